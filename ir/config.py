"""Process-wide switches.

`debug`: check every jaxpr after it is built and every implementation result
against abstract evaluation (on in the test suite; env FTRANS_DEBUG=1).

`debug_nans`: raise a FloatingPointError at the first primitive that produces
a NaN from operands that hold none (JAX's jax_debug_nans); users set it with
`ft.config.update("debug_nans", True)`.

`debug_collectives`: before each collective over processes, check that every
rank calls it with the same shape, dtype and params, and raise on every rank
when not (ftrans/distributed.py; a round trip per collective, so off by default).
"""
import os

debug = os.environ.get("FTRANS_DEBUG", "") not in ("", "0")
debug_nans = False
debug_collectives = False
