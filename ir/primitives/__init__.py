"""Every primitive, declared once. Importing this package registers them all.

Where to add a primitive: the module of its family (elementwise, structural,
reductions, linalg, indexing), as one declaration plus its binder. The
declaration names the params the primitive takes and their types
(`params={"axes": AXES}`, `params={}` for none: see ir/primitive.py); the
family registrars (`unary`, `binary`, `_reducer`, ...) fill it in for theirs.
"""
from ir.primitives import (bits, call, callback, collectives, control_flow, decompositions, elementwise,  # noqa: F401
                           fft, indexing, linalg, precision, reductions, sorting, special, structural)
from ir.primitives import custom_derivatives, remat  # noqa: F401
