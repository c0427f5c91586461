"""ftrans: composable function transformations of NumPy-style Python code.

    import ftrans as ft
    import ftrans.numpy as fnp
    print(ft.make_jaxpr(lambda x: fnp.sin(x) * 2.0)(1.0))
"""
from ftrans import lax, numpy, tree_util
from ftrans import distributed, optim, sharding
from ftrans._autodiff import grad, jvp, linearize, value_and_grad, vjp
from ftrans._check_grads import check_grads
from ftrans._config import config
from ftrans._device import device_put
from ftrans._export import ExportError, export, load
from ftrans._jacobians import hessian, jacfwd, jacrev
from ftrans._jaxpr_as_fun import jaxpr_as_fun
from ftrans._jit import jit
from ftrans._make_jaxpr import draw, make_jaxpr
from ftrans._shard_map import pmap, shard_map
from ftrans._taylor import biharmonic, differential_operator, jet, laplacian
from ftrans._vmap import vmap
from ir.core import Array, ClosedJaxpr, Jaxpr, ShapedArray
from ir.errors import ConcretizationError, UnexpectedTracerError
from ir.errors import api_boundary as _api_boundary
from ir.parser import JaxprParseError
from ir.parser import parse as _parse

parse_jaxpr = _api_boundary(_parse)  # errors show the caller's line, not the parser's frames

__version__ = "0.1.0"

__all__ = ["Array", "ClosedJaxpr", "ConcretizationError", "ExportError", "Jaxpr", "JaxprParseError", "ShapedArray", "UnexpectedTracerError",
           "biharmonic", "check_grads", "config", "device_put", "differential_operator", "distributed", "draw", "export", "grad", "hessian", "jacfwd", "jacrev", "jaxpr_as_fun", "jet", "jit", "jvp", "lax", "laplacian", "linearize", "load", "make_jaxpr", "parse_jaxpr",
           "numpy", "optim", "pmap", "shard_map", "sharding", "tree_util", "value_and_grad", "vjp", "vmap"]
