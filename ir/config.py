"""Process-wide switches.

`debug`: check every jaxpr after it is built and every implementation result
against abstract evaluation (on in the test suite; env FTRANS_DEBUG=1).

`debug_nans`: raise a FloatingPointError at the first primitive that produces
a NaN from operands that hold none (JAX's jax_debug_nans); users set it with
`ft.config.update("debug_nans", True)`.

`max_loop_iterations`: the most iterations a `while` read from text (by
parse_jaxpr or ft.load, or derived from one by a transformation) may run
before a RuntimeError stops it; None for no limit. Loops the user traced have
none: a program from elsewhere could run forever, or under grad grow its
residuals without end.

`debug_collectives`: before each collective over processes, check that every
rank calls it with the same shape, dtype and params, and raise on every rank
when not (ftrans/distributed.py; a round trip per collective, so off by default).

`cpu_kernels`: whether jit compiles C kernels on the CPU: None (auto: when a C
compiler works), True (required), False (never); "environment" until
ft.config.update sets it, which leaves it to FTRANS_CPU_KERNELS (read at each
use, see interpreters/c_compiler.py).
"""
import os
import weakref


debug = os.environ.get("FTRANS_DEBUG", "") not in ("", "0")
debug_nans = False
debug_collectives = False
max_loop_iterations = 10_000_000
cpu_kernels = "environment"

# the cond jaxprs of while loops read from text, and of those transformations derived from them
_UNTRUSTED = weakref.WeakSet()


def mark_untrusted(cond_jaxpr):
    _UNTRUSTED.add(cond_jaxpr)
    return cond_jaxpr


def is_untrusted(cond_jaxpr):
    return cond_jaxpr in _UNTRUSTED


def inherit_untrusted(new, old):
    """`new` (a cond jaxpr made from `old`) marked as `old` is."""
    if old in _UNTRUSTED:
        _UNTRUSTED.add(new)
    return new
