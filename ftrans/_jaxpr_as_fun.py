"""`jaxpr_as_fun`: a jaxpr (made by make_jaxpr, or read back by parse_jaxpr) as a function."""
from __future__ import annotations

from interpreters.eval import eval_jaxpr
from ir.core import ClosedJaxpr
from ir.errors import api_boundary, at_user_line
from ir.primitives.call import checked_arguments


@api_boundary
def jaxpr_as_fun(closed: ClosedJaxpr):
    """The function that `closed` computes, as JAX's `jax.core.jaxpr_as_fun`:
    it takes the jaxpr's inputs (the leaves of what it was traced on, in order)
    and returns the list of its outputs, evaluating the equations one by one
    through `bind`. Eagerly its results are those of the traced function, bit
    for bit; under grad, jvp, vjp, vmap or jit each equation is transformed.

    A jaxpr parsed without the values of its constants is a ValueError here,
    naming them; `closed(*args)` is the same evaluation as one jit_call.
    """
    if not isinstance(closed, ClosedJaxpr):
        raise TypeError(at_user_line(f"jaxpr_as_fun takes a ClosedJaxpr (what make_jaxpr and parse_jaxpr "
                                     f"return), got {type(closed).__name__}"))
    closed.require_consts()

    @api_boundary
    def fun(*args):
        return eval_jaxpr(closed.jaxpr, closed.consts, *checked_arguments(closed, args))
    fun.__name__ = fun.__qualname__ = "jaxpr_as_fun"
    return fun
