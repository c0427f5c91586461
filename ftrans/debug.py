"""ft.debug: print and call back from inside transformed code, at run time (JAX's jax.debug)."""
from __future__ import annotations

from ftrans._callbacks import debug_callback as callback
from ftrans._callbacks import debug_print as print  # noqa: A001 (JAX's name)
from ftrans._debugger import BreakpointQuit, breakpoint  # noqa: A004 (JAX's name)
from ftrans._unavailable import missing_name_hook as _missing_name_hook

__all__ = ["BreakpointQuit", "breakpoint", "callback", "print"]


__getattr__ = _missing_name_hook(__name__)  # a JAX name not ported yet says so
