"""`ft.config`: JAX's `jax.config` for ftrans's switches.

    ft.config.update("debug_nans", True)   # or JAX's name, "jax_debug_nans"
    ft.config.debug_nans                   # True (ft.config.jax_debug_nans too)

`debug_nans`: a FloatingPointError at the first primitive that produces a NaN
from operands holding none, naming the primitive and the user's line; a jitted
call that returns one is run again one equation at a time to find it, and
under `grad` the backward pass is checked too (as JAX's jax_debug_nans).

`max_loop_iterations` (a positive int, or None for no limit; 10,000,000 by
default): the most iterations a `while` loop read from text (ft.parse_jaxpr,
ft.load) may run before a RuntimeError stops it. Loops traced from the user's
own functions have no limit.

`debug_collectives`: every collective over processes first checks that all
ranks call it with the same shape, dtype and params, and raises a ValueError
on every rank when not (ftrans/distributed.py).

`cpu_kernels`: whether `jit` compiles fused C kernels on the CPU (the system C
compiler, cached on disk: interpreters/c_compiler.py). None (the default: auto,
used when a working compiler is found, else NumPy code with one debug-level
note), True (required: no working compiler is a KernelCompileError naming what
is missing) or False (never). Until it is set, the environment variable
FTRANS_CPU_KERNELS decides: 1, 0 or auto (unset). Changing it drops every
jitted function's compiled programs (ft.clear_caches()): their next calls
compile again, with the kernels or without.

`jax_enable_x64` is accepted for JAX programs that set it: ftrans computes in
float64 by default already (NumPy's dtypes), so True changes nothing.
"""
from __future__ import annotations

import contextvars

import numpy as np

from ir import config as _ir_config
from ir.errors import at_user_line

# option name (ftrans's and JAX's) -> the ir.config switch behind it
_SWITCHES = {"debug_nans": "debug_nans", "jax_debug_nans": "debug_nans", "debug_collectives": "debug_collectives"}
_X64 = "jax_enable_x64"
_LOOP_LIMIT = "max_loop_iterations"
_CPU_KERNELS = "cpu_kernels"


class Config:
    """ftrans's options: `update(name, value)` sets one, `config.<name>` reads it."""

    def update(self, name, value):
        if name == _X64:
            if not _is_bool(value):
                raise TypeError(at_user_line(f"ft.config.update({name!r}, ...) takes True or False, got {value!r}"))
            if not value:
                raise ValueError(at_user_line(
                    "ftrans always computes in float64 by default (NumPy's dtypes): jax_enable_x64=False "
                    "cannot be had; pass float32 arrays to compute in float32"))
            return
        if name == _LOOP_LIMIT:
            if value is not None and (_is_bool(value) or not isinstance(value, (int, np.integer)) or value < 1):
                raise TypeError(at_user_line(f"ft.config.update({name!r}, ...) takes a positive int or None, "
                                             f"got {value!r}"))
            _ir_config.max_loop_iterations = None if value is None else int(value)
            return
        if name == _CPU_KERNELS:
            if value is not None and not _is_bool(value):
                raise TypeError(at_user_line(f"ft.config.update({name!r}, ...) takes True (C kernels required), "
                                             f"False (never) or None (auto: when a C compiler works), "
                                             f"got {value!r}"))
            setting = None if value is None else bool(value)
            if setting != self.cpu_kernels:
                # compiled programs keep the code they were lowered to: drop them (as
                # ft.clear_caches does) so that every jitted function's next call follows the setting
                from ftrans._api_extras import clear_caches
                clear_caches()
            _ir_config.cpu_kernels = setting
            return
        switch = _SWITCHES.get(name) if isinstance(name, str) else None
        if switch is None:
            raise ValueError(at_user_line(f"ft.config has no option {name!r}; the options are {self._names()}"))
        if not _is_bool(value):
            raise TypeError(at_user_line(f"ft.config.update({name!r}, ...) takes True or False, got {value!r}"))
        setattr(_ir_config, switch, bool(value))

    def __getattr__(self, name):
        if name == _X64:
            return True
        if name == _LOOP_LIMIT:
            return _ir_config.max_loop_iterations
        if name == _CPU_KERNELS:
            from interpreters.c_compiler import cpu_kernels_setting
            return cpu_kernels_setting()
        switch = _SWITCHES.get(name)
        if switch is None:
            raise AttributeError(f"ft.config has no option {name!r}; the options are {self._names()}")
        return getattr(_ir_config, switch)

    def __setattr__(self, name, value):
        raise AttributeError(f"set options with ft.config.update({name!r}, value)")

    def __dir__(self):
        return [*self._names(), "update"]

    def __repr__(self):
        return "ft.config(" + ", ".join(f"{name}={getattr(self, name)!r}" for name in self._names()) + ")"

    @staticmethod
    def _names():
        return sorted([*_SWITCHES, _X64, _LOOP_LIMIT, _CPU_KERNELS])


def _is_bool(value):
    return isinstance(value, (bool, np.bool_))


config = Config()


# ft.disable_jit(): jitted functions run their Python code eagerly while it is set (per thread and task)
jit_disabled = contextvars.ContextVar("ftrans_jit_disabled", default=False)
