"""JAX's jax.ad_checkpoint: checkpoint (remat), checkpoint_name, checkpoint_policies,
print_saved_residuals, and saved_residuals (the list print_saved_residuals prints)."""
from ftrans._checkpoint import (checkpoint, checkpoint_name, checkpoint_policies, print_saved_residuals, remat,
                                saved_residual_bytes, saved_residuals)

__all__ = ["checkpoint", "checkpoint_name", "checkpoint_policies", "print_saved_residuals", "remat",
           "saved_residual_bytes", "saved_residuals"]
