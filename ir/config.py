"""Process-wide switches.

`debug`: check every jaxpr after it is built and every implementation result
against abstract evaluation (on in the test suite; env FTRANS_DEBUG=1).

`debug_nans`: raise a FloatingPointError at the first primitive that produces
a NaN from operands that hold none (JAX's jax_debug_nans); users set it with
`ft.config.update("debug_nans", True)`.
"""
import os

debug = os.environ.get("FTRANS_DEBUG", "") not in ("", "0")
debug_nans = False
