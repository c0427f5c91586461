"""ft.debug.breakpoint: a small debugger that stops where it is called, at run time, inside
`jit`, `grad` and `vmap` too (JAX's jax.debug.breakpoint with its "cli" debugger).

The arrays among the caller's local variables (traced or not) are passed to a
debug_callback, so the prompt shows their values when the program runs; the caller's other
locals (numbers, strings, functions) are visible as they were when it was traced. Commands:
`p expr` / `pp expr` print an expression, a bare expression is printed too, `l` lists the
source around the line, `w` says where, `c` continues, `q` quits (raising
BreakpointQuit), `h` lists the commands. Input comes from sys.stdin.
"""
from __future__ import annotations

import cmd
import linecache
import pprint
import sys

import numpy as np

from ftrans._callbacks import debug_callback
from ir.tracing import Tracer


class BreakpointQuit(Exception):
    """Raised by the `q` command of ft.debug.breakpoint: the program stops there."""


def _is_array(value):
    return isinstance(value, (Tracer, np.ndarray, np.generic))


class _Prompt(cmd.Cmd):
    prompt = "(fdb) "

    def __init__(self, namespace, filename, lineno, function):
        super().__init__(stdin=sys.stdin, stdout=sys.stdout)
        self.use_rawinput = False
        self.namespace, self.filename, self.lineno, self.function = namespace, filename, lineno, function

    def _show(self, expression, pretty=False):
        try:
            value = eval(expression, {}, dict(self.namespace))  # noqa: S307 (the user's own debugger input)
        except Exception as error:  # a debugger reports any error of the user's expression
            self.stdout.write(f"*** {type(error).__name__}: {error}\n")
            return
        self.stdout.write((pprint.pformat(value) if pretty else repr(value)) + "\n")

    def do_p(self, arg):
        """p expr: print the value of expr."""
        self._show(arg)

    def do_pp(self, arg):
        """pp expr: pretty-print the value of expr."""
        self._show(arg, pretty=True)

    def do_l(self, arg):
        """l: the source lines around the breakpoint."""
        for n in range(max(1, self.lineno - 5), self.lineno + 6):
            line = linecache.getline(self.filename, n)
            if line:
                self.stdout.write(f"{n:4d} {'->' if n == self.lineno else '  '} {line.rstrip()}\n")

    def do_w(self, arg):
        """w: where the breakpoint is."""
        self.stdout.write(f"  {self.filename}({self.lineno}){self.function}()\n")

    def do_c(self, arg):
        """c: continue running the program."""
        return True

    def do_q(self, arg):
        """q: stop the program (raises BreakpointQuit)."""
        raise BreakpointQuit(f"quit at the breakpoint of {self.function} ({self.filename}:{self.lineno})")

    do_list, do_where, do_continue, do_cont, do_quit, do_exit = do_l, do_w, do_c, do_c, do_q, do_q

    def do_EOF(self, arg):  # end of input: continue, as pdb does
        return True

    def default(self, line):
        self._show(line)

    def emptyline(self):
        return None


def breakpoint(*, backend=None, filter_frames=True, num_frames=None, ordered=False, token=None,  # noqa: A001
               **kwargs):
    """Stop here when the program runs and read debugger commands from stdin (see the module
    docstring). JAX's keywords are accepted; `backend` may only be None or "cli"."""
    if backend not in (None, "cli"):
        raise ValueError(f"debug.breakpoint: the only debugger is 'cli', got backend={backend!r}")
    frame = sys._getframe(1)
    local_values = dict(frame.f_locals)
    names = [name for name, value in local_values.items() if _is_array(value)]
    others = {name: value for name, value in local_values.items() if name not in names}
    where = (frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name)

    def stop(*values):
        namespace = {**others, **dict(zip(names, values))}
        prompt = _Prompt(namespace, *where)
        prompt.stdout.write(f"Entering ftrans debugger at {where[0]}({where[1]}){where[2]}()\n")
        prompt.cmdloop()
    debug_callback(stop, *(local_values[name] for name in names), ordered=ordered)
    return token
