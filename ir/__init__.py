"""The IR: abstract values, jaxprs, primitives, tracing, printing, parsing and checking.

Internal to ftrans: `ir` imports nothing of ours, and users import `ftrans`.
"""
from ir import primitives  # noqa: F401  (registers every primitive)
from ir.check import JaxprTypeError, check
from ir.core import ClosedJaxpr, Eqn, Jaxpr, Literal, ShapedArray, Var, float0
from ir.errors import ConcretizationError, UnexpectedTracerError
from ir.primitive import PRIMITIVES, Primitive
from ir.parser import JaxprParseError, parse
from ir.printer import pp_jaxpr
from ir.tracing import Trace, Tracer, bind, current_trace, get_aval, stage

__all__ = ["ClosedJaxpr", "ConcretizationError", "Eqn", "Jaxpr", "JaxprParseError", "JaxprTypeError", "Literal",
           "PRIMITIVES", "Primitive", "ShapedArray", "Trace", "Tracer", "UnexpectedTracerError",
           "Var", "bind", "check", "current_trace", "float0", "get_aval", "parse", "pp_jaxpr", "stage"]
