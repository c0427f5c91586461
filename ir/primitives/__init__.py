"""Every primitive, declared once. Importing this package registers them all.

Where to add a primitive: the module of its family (elementwise, structural,
reductions, linalg, indexing), as one declaration plus its binder. The
declaration names the params the primitive takes and their types
(`params={"axes": AXES}`, `params={}` for none: see ir/primitive.py); the
family registrars (`unary`, `binary`, `_reducer`, ...) fill it in for theirs.
"""
from ir.primitives import (call, callback, collectives, control_flow, elementwise, indexing, linalg,  # noqa: F401
                           precision, reductions, sorting, special, structural)
