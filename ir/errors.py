"""Errors users see, and how they are pointed at the user's own code.

ftrans reports a mistake at the line of the user's program that made it, and
the traceback a user sees holds their frames only: `api_boundary` wraps each
public entry point and drops ftrans's internal frames from any exception
passing through (set FTRANS_TRACEBACK_FILTERING=off to keep them).
"""
from __future__ import annotations

import functools
import linecache
import os
import sys

_PACKAGE_DIRS = tuple(
    os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), name) + os.sep
    for name in ("ir", "interpreters", "ftrans"))
_STDLIB_DIR = os.path.dirname(os.__file__) + os.sep


class ConcretizationError(TypeError):
    """A concrete value was needed where only an abstract (traced) one exists.

    NB: JAX calls this ConcretizationTypeError; it is a TypeError in both.
    """


class TracerArrayConversionError(TypeError):
    """NumPy was asked to turn a traced value into an array."""


class UnexpectedTracerError(TypeError):
    """A tracer was used after the transformation that made it had finished.

    A TypeError, as JAX's is: a value of the wrong kind reached the code."""


class KernelCompileError(RuntimeError):
    """The system C compiler is missing where CPU kernels were required, or
    failed on a generated kernel (interpreters/c_compiler.py): the message says
    what is missing, or holds the compiler's stderr and the source file's path."""


def _is_internal(filename: str) -> bool:
    return filename.startswith(_PACKAGE_DIRS) or filename.startswith(_STDLIB_DIR)


def user_frame():
    """The innermost frame of the call stack that is not ftrans's (nor the stdlib's)."""
    frame = sys._getframe(1)
    while frame is not None and _is_internal(os.path.abspath(frame.f_code.co_filename)):
        frame = frame.f_back
    return frame


def user_location() -> str:
    """``file.py:12 (c = a + b)`` for the user's current line, or '' if none is found."""
    frame = user_frame()
    if frame is None:
        return ""
    filename, lineno = frame.f_code.co_filename, frame.f_lineno
    line = linecache.getline(filename, lineno).strip()
    return f"{filename}:{lineno}" + (f" ({line})" if line else "")


def at_user_line(message: str) -> str:
    location = user_location()
    return f"{message}\n  at {location}" if location else message


def _filtering_enabled() -> bool:
    return os.environ.get("FTRANS_TRACEBACK_FILTERING", "on").lower() not in ("off", "0", "false")


def _filter_traceback(tb):
    kept = [t for t in _walk(tb) if not _is_internal(os.path.abspath(t.tb_frame.f_code.co_filename))]
    for outer, inner in zip(kept, kept[1:] + [None]):
        outer.tb_next = inner
    return kept[0] if kept else None


def _walk(tb):
    while tb is not None:
        yield tb
        tb = tb.tb_next


def api_boundary(fun):
    """Wrap a public entry point so that errors show the user's frames, not ours.

    Boundaries nest: an inner one's re-raise is itself an internal frame, which
    the outermost filters out, so a traceback always holds exactly one ftrans
    frame, the outermost re-raise."""
    @functools.wraps(fun)
    def reraise_with_user_frames(*args, **kwargs):
        try:
            return fun(*args, **kwargs)
        except Exception as error:
            if not _filtering_enabled():
                raise
            raise error.with_traceback(_filter_traceback(error.__traceback__))  # ftrans internals hidden (FTRANS_TRACEBACK_FILTERING=off shows them)
    return reraise_with_user_frames


def operator_boundary(fun, arity):
    """`api_boundary` for a Python operator of tracers taking `arity` (1 or 2)
    operands: the same re-raise, without the cost of packing *args, since an
    operator runs for every traced `x * y`."""
    if arity == 1:
        def reraise_with_user_frames(x):
            try:
                return fun(x)
            except Exception as error:
                if not _filtering_enabled():
                    raise
                raise error.with_traceback(_filter_traceback(error.__traceback__))
    elif arity == 2:
        def reraise_with_user_frames(x, y):
            try:
                return fun(x, y)
            except Exception as error:
                if not _filtering_enabled():
                    raise
                raise error.with_traceback(_filter_traceback(error.__traceback__))
    else:
        raise ValueError(f"operator_boundary: arity must be 1 or 2, got {arity!r}")
    return functools.wraps(fun)(reraise_with_user_frames)
