"""ftrans: composable function transformations of NumPy-style Python code.

    import ftrans as ft
    import ftrans.numpy as fnp
    print(ft.make_jaxpr(lambda x: fnp.sin(x) * 2.0)(1.0))
"""
from ftrans import debug, lax, numpy, tree, tree_util
from ftrans import distributed, nn, optim, random, scipy, sharding
from ftrans._api_extras import (Device, ShapeDtypeStruct, block_until_ready, clear_caches, closure_convert,
                                default_backend, device_get, devices, disable_jit, ensure_compile_time_eval,
                                eval_shape, linear_transpose, local_devices, named_call, typeof)
from ftrans._callbacks import pure_callback
from ftrans._autodiff import grad, jvp, linearize, value_and_grad, vjp
from ftrans._check_grads import check_grads
from ftrans import ad_checkpoint
from ftrans._checkpoint import checkpoint, checkpoint_policies, print_saved_residuals, remat
from ftrans._config import config
from ftrans._custom_derivatives import custom_jvp, custom_vjp
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
from ir.errors import ConcretizationError, KernelCompileError, UnexpectedTracerError
from ir.errors import api_boundary as _api_boundary
from ir.parser import JaxprParseError
from ir.parser import parse as _parse
from ftrans._unavailable import missing_name_hook as _missing_name_hook

parse_jaxpr = _api_boundary(_parse)  # errors show the caller's line, not the parser's frames

__version__ = "0.1.0"

__all__ = ["Array", "ClosedJaxpr", "ConcretizationError", "Device", "ExportError", "Jaxpr", "JaxprParseError",
           "KernelCompileError", "ShapeDtypeStruct", "ShapedArray", "UnexpectedTracerError", "ad_checkpoint", "biharmonic",
           "block_until_ready", "checkpoint", "checkpoint_policies", "custom_jvp", "custom_vjp",
           "check_grads", "clear_caches", "closure_convert", "config", "debug", "default_backend", "device_get", "device_put", "devices",
           "differential_operator", "disable_jit", "distributed", "draw", "ensure_compile_time_eval", "eval_shape", "export", "grad", "hessian", "jacfwd",
           "jacrev", "jaxpr_as_fun", "jet", "jit", "jvp", "laplacian", "lax", "linear_transpose", "linearize", "load",
           "local_devices", "make_jaxpr", "named_call", "nn", "numpy", "optim", "parse_jaxpr", "pmap", "print_saved_residuals", "pure_callback",
           "random", "remat", "scipy", "shard_map", "sharding", "tree", "tree_util", "typeof",
           "value_and_grad", "vjp", "vmap"]


__getattr__ = _missing_name_hook(__name__)  # a JAX name not ported yet says so
