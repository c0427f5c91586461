"""ft.tree: the short spelling of ft.tree_util (JAX's jax.tree): `ft.tree.map(f, params)` and so on."""
from __future__ import annotations

from ftrans._unavailable import missing_name_hook as _missing_name_hook
from ftrans.tree_util import tree_all as all  # noqa: A001 (JAX's name)
from ftrans.tree_util import tree_flatten as flatten
from ftrans.tree_util import tree_flatten_with_path as flatten_with_path
from ftrans.tree_util import tree_leaves as leaves
from ftrans.tree_util import tree_leaves_with_path as leaves_with_path
from ftrans.tree_util import tree_map as map  # noqa: A001
from ftrans.tree_util import tree_map_with_path as map_with_path
from ftrans.tree_util import tree_reduce as reduce
from ftrans.tree_util import tree_structure as structure
from ftrans.tree_util import tree_transpose as transpose
from ftrans.tree_util import tree_unflatten as unflatten

__all__ = ["all", "flatten", "flatten_with_path", "leaves", "leaves_with_path", "map", "map_with_path", "reduce",
           "structure", "transpose", "unflatten"]


__getattr__ = _missing_name_hook(__name__)  # a JAX name not ported yet says so
