"""Every primitive, declared once. Importing this package registers them all.

Where to add a primitive: the module of its family (elementwise, structural,
reductions, linalg, indexing), as one declaration plus its binder.
"""
from ir.primitives import call, elementwise, indexing, linalg, reductions, structural  # noqa: F401
