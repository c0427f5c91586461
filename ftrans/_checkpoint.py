"""ft.checkpoint (alias ft.remat), ft.checkpoint_policies and ft.ad_checkpoint's helpers, as JAX's.

`checkpoint(fun)` stages `fun` into one `checkpoint` equation (ir/primitives/remat.py)
whenever a trace is open; reverse mode then stores only the residuals its policy
allows and recomputes the rest from the checkpoint's inputs in the backward pass.
With no trace open it just calls `fun`. `print_saved_residuals(f, *args)` lists what
reverse mode stores for f at args: the type of each residual and where it comes from.
"""
from __future__ import annotations

import functools
import re
import types

from ftrans._api_util import _leaf_path, check_callable, flatten_args, normalize_argnums, trace_flat
from ftrans.tree_util import tree_flatten, tree_unflatten
from interpreters import ad
from ir.errors import api_boundary, at_user_line
from ir.primitive import as_array
from ir.primitives import remat as remat_rules
from ir.primitives.call import call_form
from ir.tracing import StagingTrace, StagingTracer, current_trace, get_aval, trace_context


class _Policy:
    """A named rematerialization policy: callable as JAX's are, `policy(prim, *avals, **params)`."""

    def __init__(self, name, names=()):
        self.name, self.names = name, tuple(names)
        self.__name__ = name

    def __call__(self, prim, *avals, **params):
        from ir.core import Eqn
        return remat_rules.saveable(self.name, self.names, Eqn(prim, [], [], params))

    def __repr__(self):
        return f"checkpoint_policies.{self.name}" + (f"({', '.join(map(repr, self.names))})" if self.names else "")


def _save_only_these_names(*names):
    return _Policy("save_only_these_names", _checked_names(names, "save_only_these_names"))


def _save_any_names_but_these(*names):
    return _Policy("save_any_names_but_these", _checked_names(names, "save_any_names_but_these"))


def _checked_names(names, what):
    if len(names) == 1 and isinstance(names[0], (list, tuple, set)):
        names = tuple(names[0])
    if not all(isinstance(n, str) for n in names):
        raise TypeError(at_user_line(f"checkpoint_policies.{what}: names must be strings, got {names!r}"))
    return tuple(sorted(set(names)))


checkpoint_policies = types.SimpleNamespace(
    nothing_saveable=_Policy("nothing_saveable"),
    everything_saveable=_Policy("everything_saveable"),
    dots_saveable=_Policy("dots_saveable"),
    checkpoint_dots=_Policy("dots_saveable"),
    dots_with_no_batch_dims_saveable=_Policy("dots_with_no_batch_dims_saveable"),
    checkpoint_dots_with_no_batch_dims=_Policy("dots_with_no_batch_dims_saveable"),
    save_only_these_names=_save_only_these_names,
    save_any_names_but_these=_save_any_names_but_these,
)


def _policy_of(policy):
    if policy is None:
        return "nothing_saveable", ()
    if isinstance(policy, _Policy):
        return policy.name, policy.names
    raise TypeError(at_user_line(
        f"checkpoint: policy must be one of ft.checkpoint_policies ({', '.join(remat_rules.POLICIES)}), "
        f"got {policy!r}: "
        "ftrans prints and parses the policy by its name, so arbitrary callables are not taken"))


def checkpoint(fun, *, prevent_cse=True, policy=None, static_argnums=()):
    """`fun`, rematerialized in reverse mode: its intermediates are recomputed in the
    backward pass from its inputs (except those `policy` saves), as JAX's jax.checkpoint."""
    check_callable(fun, "checkpoint")
    policy_name, names = _policy_of(policy)
    static_argnums = tuple(static_argnums) if not isinstance(static_argnums, int) else (static_argnums,)

    @functools.wraps(fun)
    @api_boundary
    def rematerialized(*args):
        if current_trace() is None:
            return fun(*args)
        nums = normalize_argnums(static_argnums, len(args))
        static = {i: args[i] for i in nums}
        dynamic = [a for i, a in enumerate(args) if i not in static]
        leaves, in_tree, avals = flatten_args(dynamic, "checkpoint")

        def with_static(*dyn):
            dyn, merged = iter(dyn), []
            for i in range(len(args)):
                merged.append(static[i] if i in static else next(dyn))
            return fun(*merged)
        closed, out_tree = trace_flat(with_static, in_tree, avals, "checkpoint")
        body, consts = call_form(closed)
        outs = remat_rules.checkpoint(body, [*consts, *leaves], policy_name, names, bool(prevent_cse))
        return tree_unflatten(out_tree, outs)
    return rematerialized


remat = checkpoint


def checkpoint_name(x, name):
    """`x`, named for the policies save_only_these_names / save_any_names_but_these (JAX's)."""
    if not isinstance(name, str):
        raise TypeError(at_user_line(f"checkpoint_name: the name must be a string, got {name!r}"))
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(at_user_line(f"checkpoint_name: the name {name!r} must be letters, digits and _ (not "
                                      "starting with a digit), so that the printed program reads back"))
    leaves, tree = tree_flatten(x)
    if current_trace() is None:
        return tree_unflatten(tree, [as_array(leaf) for leaf in leaves])
    return tree_unflatten(tree, [remat_rules.checkpoint_name(leaf, name) for leaf in leaves])


# -------------------- what reverse mode stores --------------------

def saved_residuals(f, *args):
    """[(aval, where it comes from)] for each residual reverse mode stores for `f` at `args`
    (its linearization, staged: the same residuals an eager grad keeps)."""
    check_callable(f, "saved_residuals")
    leaves, in_tree, avals = flatten_args(args, "saved_residuals")
    arg_names = _argument_names(args)

    def flat_f(*xs):
        out = f(*tree_unflatten(in_tree, xs))
        return tree_flatten(out)[0]

    with trace_context(StagingTrace()) as known:
        inputs = [known.new_arg(a) for a in avals]
        wrt = [a.dtype.kind in "fc" for a in avals]
        _, linear = ad.linearize_flat(flat_f, inputs, wrt)
    producer = {v: eqn for eqn in known.eqns for v in eqn.outvars}
    position = {t._var: i for i, t in enumerate(inputs)}
    result = []
    for r in linear.residuals:
        if isinstance(r, StagingTracer) and r._trace is known:
            var = r._var
            if var in position:
                result.append((var.aval, f"from the argument {arg_names[position[var]]}"))
            else:
                result.append((var.aval, f"output of {_made_by(producer[var], var)}"))
        else:
            result.append((get_aval(r), "a constant"))
    return result


def _made_by(eqn, var):
    """The primitive that made `var`: inside a call or a checkpoint's forward part, the inner one."""
    while eqn.primitive.holds_jaxprs and "jaxpr" in eqn.params:
        inner = eqn.params["jaxpr"].jaxpr
        out = inner.outvars[eqn.outvars.index(var)]
        found = next((e for e in inner.eqns if out in e.outvars), None)
        if found is None:
            return eqn.primitive.name
        eqn, var = found, out
    return eqn.primitive.name


def _argument_names(args):
    """`argument 0`, `argument 1['w']`, ... for each leaf of the arguments."""
    n = len(tree_flatten(tuple(args))[0])
    names = []
    for i in range(n):
        path = _leaf_path(tuple(args), i) or f"[{i}]"
        number, rest = path[1:].split("]", 1)
        names.append(f"{number}{rest}")
    return names


def print_saved_residuals(f, *args):
    """Print what reverse mode stores for `f` at `args`: each residual's type and
    where it comes from (an argument, or the primitive that computed it), then the total."""
    residuals = saved_residuals(f, *args)
    total = 0
    for aval, where in residuals:
        print(f"{aval.str_short()} {where}")
        total += aval.size * aval.dtype.itemsize
    print(f"total: {len(residuals)} residuals, {total} bytes")


def saved_residual_bytes(f, *args):
    """The bytes of the residuals print_saved_residuals lists."""
    return sum(aval.size * aval.dtype.itemsize for aval, _ in saved_residuals(f, *args))
