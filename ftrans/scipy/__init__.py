"""ftrans.scipy: the parts of scipy that jax.scipy has (linalg, special, stats), traceable."""
from ftrans.scipy import linalg, special, stats

__all__ = ["linalg", "special", "stats"]
