"""ft.custom_jvp and ft.custom_vjp: functions with derivative rules of their own, as JAX's.

With no trace open, calling one runs the function. Under any trace (grad's tape,
jvp, vmap, jit, make_jaxpr) the function and its rule are traced into closed
jaxprs and one `custom_jvp_call` / `custom_vjp_call` equation is bound
(ir/primitives/custom_derivatives.py), which every transformation carries: the
rule is used under jvp, grad, vjp and linearize, both are batched under vmap,
and jit keeps the equation until lowering runs the function.

The rule's types are checked when it is traced, as JAX checks them, naming the
function and the mismatch: a jvp rule's tangent against its primal output
(TypeError), a bwd's cotangents against the arguments (TypeError for the
structure, ValueError for shapes and dtypes, as JAX's).
"""
from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
import re

import numpy as np

from ftrans._api_util import (_leaf_path, check_callable, check_outputs, flatten_args, trace_flat,
                              with_output_types)
from ftrans.tree_util import tree_flatten, tree_map, tree_unflatten
from ir.errors import api_boundary, at_user_line
from ir.markers import tangent_aval
from ir.primitive import as_array
from ir.primitives import ad_util
from ir.primitives import custom_derivatives as cd
from ir.primitives import elementwise as ew
from ir.primitives.call import call_form
from ir.tracing import Tracer, current_trace, get_aval, stage

_WEAK_LIKE = {"b": False, "i": 0, "u": 0, "f": 0.0}

# A rule usually calls its own function (`return f(x), t * ...`), and staging that call
# stages the rule again. JAX stages rules lazily, when a transformation asks; ftrans stages
# them at once, so that a printed program holds them, and bounds the nesting instead: a
# call made while this many rules of the same function are being staged runs the function
# as plain traced code. Derivatives up to this order use the custom rules throughout.
MAX_RULE_NESTING = 2
_STAGING_RULES_OF = contextvars.ContextVar("ftrans_staging_rules_of", default=())


@contextlib.contextmanager
def _staging_rules_of(custom):
    token = _STAGING_RULES_OF.set(_STAGING_RULES_OF.get() + (custom,))
    try:
        yield
    finally:
        _STAGING_RULES_OF.reset(token)


def _nested_too_deep(custom):
    return sum(c is custom for c in _STAGING_RULES_OF.get()) >= MAX_RULE_NESTING


def _name_of(fun):
    return getattr(fun, "__name__", None) or type(fun).__name__


def _printable(name):
    """`name` as the printed IR writes a name (letters, digits, _): `<lambda>` is `_lambda_`."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", name) or "f"
    return name if not name[0].isdigit() else "_" + name


def _positional(fun, args, kwargs):
    """`args` and `kwargs` as positional arguments of `fun`, as JAX's custom functions take them."""
    if not kwargs:
        return tuple(args)
    try:
        bound = inspect.signature(fun).bind(*args, **kwargs)
    except (TypeError, ValueError) as error:
        raise TypeError(at_user_line(f"{_name_of(fun)}: {error}")) from None
    bound.apply_defaults()
    if bound.kwargs:
        raise TypeError(at_user_line(f"{_name_of(fun)}: keyword-only arguments {sorted(bound.kwargs)} are not "
                                     "supported by custom_jvp/custom_vjp functions; pass them positionally"))
    return bound.args


def _check_nondiff_argnums(nondiff_argnums, what):
    if isinstance(nondiff_argnums, int):
        nondiff_argnums = (nondiff_argnums,)
    try:
        nums = tuple(nondiff_argnums)
    except TypeError:
        raise TypeError(at_user_line(f"{what}: nondiff_argnums must be an int or a tuple of ints, "
                                     f"got {nondiff_argnums!r}")) from None
    if not all(type(n) is int and n >= 0 for n in nums) or len(set(nums)) != len(nums):
        raise TypeError(at_user_line(f"{what}: nondiff_argnums must be distinct non-negative ints, got {nums!r}"))
    return tuple(sorted(nums))


def _split_args(args, nondiff_argnums, name):
    for n in nondiff_argnums:
        if n >= len(args):
            raise TypeError(at_user_line(f"{name}: nondiff_argnums names argument {n}, but the function was "
                                         f"called with {len(args)} arguments"))
    static = [args[n] for n in nondiff_argnums]
    dynamic = [a for i, a in enumerate(args) if i not in nondiff_argnums]
    return static, dynamic


def _rebuild(static, dynamic, nondiff_argnums):
    """The arguments in their positions: the nondiff ones where they were."""
    total = len(static) + len(dynamic)
    static, dynamic = iter(static), iter(dynamic)
    return [next(static) if i in nondiff_argnums else next(dynamic) for i in range(total)]


def _arrays(tree):
    leaves, treedef = tree_flatten(tree)
    check_outputs(leaves, "custom function")
    return tree_unflatten(treedef, [as_array(x) for x in leaves])


def _conformed(x, aval):
    """`x` (a leaf a rule returned) as a value of `aval`, or None if its type
    differs: a weakly typed value (a Python scalar) takes the dtype and shape it
    promotes to, as in JAX."""
    got = get_aval(x) if isinstance(x, Tracer) else get_aval(np.asarray(x) if not isinstance(x, (bool, int, float))
                                                            else x)
    if got.shape == aval.shape and got.dtype == aval.dtype:
        return x if not isinstance(x, (bool, int, float)) else np.asarray(x, aval.dtype)
    if got.weak_type and got.shape in ((), aval.shape) and aval.dtype.kind in "fc" \
            and np.result_type(_WEAK_LIKE[got.dtype.kind], aval.dtype) == aval.dtype:
        x = ew.convert_element_type(x, aval.dtype) if isinstance(x, Tracer) else np.asarray(x, aval.dtype)
        if got.shape != aval.shape:
            x = ad_util.zeros(aval) + x if isinstance(x, Tracer) else np.broadcast_to(x, aval.shape).copy()
        return x
    return None


def _aval_text(x):
    try:
        return get_aval(x).str_short() if isinstance(x, Tracer) else get_aval(np.asarray(x)).str_short()
    except TypeError:
        return type(x).__name__


def _fitted_primals(leaves, out_tree, out_avals, rule, rule_short):
    """A rule's primal outputs conformed to the function's output types, or a TypeError
    naming the first output (by pytree path) whose shape or dtype differs."""
    fitted = []
    for i, (leaf, aval) in enumerate(zip(leaves, out_avals, strict=True)):
        conformed = _conformed(leaf, aval)
        if conformed is None:
            path = _leaf_path(tree_unflatten(out_tree, [0] * len(out_avals)), i) or ""
            raise TypeError(at_user_line(
                f"{rule} must produce primal outputs with the shapes and dtypes of the function's: "
                f"output{path} is {aval.str_short()} in the function and {_aval_text(leaf)} in {rule_short}"))
        fitted.append(conformed)
    return fitted


def _staged_function(fun, static, nondiff_argnums, in_tree, avals, name):
    def dynamic_fun(*dynamic):
        return fun(*_rebuild(static, dynamic, nondiff_argnums))
    return trace_flat(dynamic_fun, in_tree, avals, name)


# -------------------- custom_jvp --------------------

class custom_jvp:
    """A function with a JVP rule of its own (JAX's `jax.custom_jvp`).

        @ft.custom_jvp
        def log1pexp(x):
            return fnp.log(1.0 + fnp.exp(x))

        @log1pexp.defjvp
        def log1pexp_jvp(primals, tangents):
            (x,), (t,) = primals, tangents
            return log1pexp(x), t * (1.0 - 1.0 / (1.0 + fnp.exp(x)))

    The rule must be linear in the tangents: reverse mode transposes it.
    `nondiff_argnums` are passed to the rule first, as they are (JAX's).
    """

    def __init__(self, fun, nondiff_argnums=()):
        check_callable(fun, "custom_jvp")
        self.fun = fun
        self.nondiff_argnums = _check_nondiff_argnums(nondiff_argnums, "custom_jvp")
        self.jvp = None
        self.symbolic_zeros = False
        functools.update_wrapper(self, fun)

    def defjvp(self, jvp, symbolic_zeros=False):
        """Set the rule `jvp(primals, tangents) -> (primal_out, tangent_out)`
        (with nondiff_argnums, `jvp(*nondiff_args, primals, tangents)`). Returns it,
        so it serves as a decorator. With `symbolic_zeros` the rule may be handed
        SymbolicZero tangents (as JAX's); ftrans hands it every tangent."""
        check_callable(jvp, "custom_jvp.defjvp")
        self.jvp, self.symbolic_zeros = jvp, bool(symbolic_zeros)
        return jvp

    def defjvps(self, *jvps):
        """One rule per argument, `jvp_i(tangent_i, primal_out, *primals) -> its
        contribution to the output tangent` (None: the argument has no tangent),
        summed (JAX's defjvps)."""
        if self.nondiff_argnums:
            raise TypeError(at_user_line("custom_jvp.defjvps cannot be used with nondiff_argnums; use defjvp"))

        def jvp(primals, tangents):
            if len(jvps) != len(primals):
                raise TypeError(at_user_line(f"custom_jvp.defjvps of {_name_of(self.fun)}: {len(jvps)} rules for "
                                             f"{len(primals)} arguments; give one per argument (None for none)"))
            primal_out = self(*primals)
            total = None
            for rule, t in zip(jvps, tangents):
                if rule is None:
                    continue
                term = rule(t, primal_out, *primals)
                total = term if total is None else tree_map(lambda a, b: a + b, total, term)
            if total is None:
                total = tree_map(lambda y: ad_util.zeros(tangent_aval(get_aval(y))), primal_out)
            return primal_out, total

        self.defjvp(jvp)

    @api_boundary
    def __call__(self, *args, **kwargs):
        name = _name_of(self.fun)
        if self.jvp is None:
            raise AttributeError(f"No JVP defined for custom_jvp function {name} using defjvp.")
        args = _positional(self.fun, args, kwargs)
        if current_trace() is None:
            return _arrays(self.fun(*args))
        if _nested_too_deep(self):
            return self.fun(*args)
        static, dynamic = _split_args(args, self.nondiff_argnums, name)
        leaves, in_tree, avals = flatten_args(dynamic, f"custom_jvp function {name}")
        closed, out_tree = _staged_function(self.fun, static, self.nondiff_argnums, in_tree, avals, name)
        out_avals = closed.out_avals
        with _staging_rules_of(self):
            jvp_closed = stage(self._flat_rule(static, in_tree, out_tree, out_avals, name),
                               [*avals, *(tangent_aval(a) for a in avals)])
        call_jaxpr, consts = call_form(closed)
        jvp_jaxpr, jvp_consts = call_form(jvp_closed)
        outs = cd.custom_jvp_call(call_jaxpr, jvp_jaxpr, consts, jvp_consts, leaves, _printable(name),
                                  self.symbolic_zeros)
        return tree_unflatten(out_tree, outs)

    def _flat_rule(self, static, in_tree, out_tree, out_avals, name):
        n = in_tree.num_leaves

        def flat_rule(*leaves):
            primals = tuple(tree_unflatten(in_tree, leaves[:n]))
            tangents = tuple(tree_unflatten(in_tree, leaves[n:]))
            out = self.jvp(*static, primals, tangents)
            if not (isinstance(out, (tuple, list)) and len(out) == 2):
                raise TypeError(at_user_line(
                    f"Custom JVP rule of {name} must produce a pair (list or tuple of length two) representing "
                    f"primal and tangent outputs, got {type(out).__name__}"))
            primal_out, tangent_out = out
            p_leaves, p_tree = tree_flatten(primal_out)
            t_leaves, t_tree = tree_flatten(tangent_out)
            if p_tree != out_tree:
                raise TypeError(at_user_line(
                    f"Custom JVP rule of {name} must produce a primal output with the same container (pytree) "
                    f"structure as the function's output: the function returns {out_tree}, the rule {p_tree}"))
            if t_tree != p_tree:
                raise TypeError(at_user_line(
                    f"Custom JVP rule of {name} must produce primal and tangent outputs with equal container "
                    f"(pytree) structures, but got {p_tree} and {t_tree} respectively"))
            check_outputs([*p_leaves, *t_leaves], f"Custom JVP rule of {name}")
            primals_flat = _fitted_primals(p_leaves, out_tree, out_avals, f"Custom JVP rule of {name}", "the rule")
            tangents_flat = []
            example = tree_unflatten(out_tree, [0] * len(out_avals))
            for i, (t, aval) in enumerate(zip(t_leaves, out_avals, strict=True)):
                path = _leaf_path(example, i) or ""
                t_aval = tangent_aval(aval)
                if aval.dtype.kind not in "fc":  # an integer output's tangent is float0 zeros, whatever the rule says
                    tangents_flat.append(ad_util.zeros(t_aval))
                    continue
                fitted = _conformed(t, t_aval)
                if fitted is None:
                    raise TypeError(at_user_line(
                        f"Custom JVP rule of {name} must produce primal and tangent outputs with corresponding "
                        f"shapes and dtypes, but output{path} is {aval.str_short()} and its tangent "
                        f"{_aval_text(t)}"))
                tangents_flat.append(fitted)
            return [*primals_flat, *tangents_flat]
        return flat_rule


# -------------------- custom_vjp --------------------

class custom_vjp:
    """A function with a VJP rule of its own (JAX's `jax.custom_vjp`).

        @ft.custom_vjp
        def clip_gradient(x):
            return x

        def fwd(x):
            return x, None                      # (output, residuals: any pytree)

        def bwd(residuals, g):
            return (fnp.clip(g, -1.0, 1.0),)    # one cotangent per argument (None: zero)

        clip_gradient.defvjp(fwd, bwd)

    Forward mode (jvp) of it is a TypeError, as in JAX. With nondiff_argnums, fwd
    takes every argument and bwd takes the nondiff ones first.
    """

    def __init__(self, fun, nondiff_argnums=()):
        check_callable(fun, "custom_vjp")
        self.fun = fun
        self.nondiff_argnums = _check_nondiff_argnums(nondiff_argnums, "custom_vjp")
        self.fwd = self.bwd = None
        functools.update_wrapper(self, fun)

    def defvjp(self, fwd, bwd, symbolic_zeros=False):
        """Set `fwd(*args) -> (output, residuals)` and `bwd(residuals, cotangent) ->
        a tuple of one cotangent per (differentiable) argument`."""
        check_callable(fwd, "custom_vjp.defvjp (fwd)")
        check_callable(bwd, "custom_vjp.defvjp (bwd)")
        if symbolic_zeros:
            raise NotImplementedError("custom_vjp.defvjp(symbolic_zeros=True): ftrans hands bwd materialized zeros")
        self.fwd, self.bwd = fwd, bwd

    @api_boundary
    def __call__(self, *args, **kwargs):
        name = _name_of(self.fun)
        if self.fwd is None:
            raise AttributeError(f"No VJP defined for custom_vjp function {name} using defvjp.")
        args = _positional(self.fun, args, kwargs)
        if current_trace() is None:
            return _arrays(self.fun(*args))
        if _nested_too_deep(self):
            return self.fun(*args)
        static, dynamic = _split_args(args, self.nondiff_argnums, name)
        leaves, in_tree, avals = flatten_args(dynamic, f"custom_vjp function {name}")
        closed, out_tree = _staged_function(self.fun, static, self.nondiff_argnums, in_tree, avals, name)
        out_avals = closed.out_avals
        with _staging_rules_of(self):
            fwd_closed, res_tree, res_avals = self._staged_fwd(static, in_tree, avals, out_tree, out_avals, name)
            bwd_closed = stage(self._flat_bwd(static, in_tree, avals, res_tree, out_tree, name),
                               [*res_avals, *(tangent_aval(a) for a in out_avals)])
        call_jaxpr, consts = call_form(closed)
        fwd_jaxpr, fwd_consts = call_form(fwd_closed)
        bwd_jaxpr, bwd_consts = call_form(bwd_closed)
        outs = cd.custom_vjp_call(call_jaxpr, fwd_jaxpr, bwd_jaxpr, consts, fwd_consts, bwd_consts, leaves,
                                  len(res_avals), _printable(name))
        return tree_unflatten(out_tree, outs)

    def _staged_fwd(self, static, in_tree, avals, out_tree, out_avals, name):
        trees = []

        def flat_fwd(*leaves):
            out = self.fwd(*_rebuild(static, tree_unflatten(in_tree, leaves), self.nondiff_argnums))
            if not (isinstance(out, (tuple, list)) and len(out) == 2):
                raise TypeError(at_user_line(
                    f"Custom VJP fwd rule of {name} must produce a pair (list or tuple of length two) representing "
                    "primal outputs and residuals (values stored from the forward pass for use on the backward "
                    f"pass), got {type(out).__name__}"))
            primal_out, residuals = out
            p_leaves, p_tree = tree_flatten(primal_out)
            if p_tree != out_tree:
                raise TypeError(at_user_line(
                    f"Custom VJP fwd rule of {name} must produce a primal output with the same container (pytree) "
                    f"structure as the function's: the function returns {out_tree}, fwd {p_tree}"))
            r_leaves, r_tree = tree_flatten(residuals)
            check_outputs([*p_leaves, *r_leaves], f"Custom VJP fwd rule of {name}")
            fitted = _fitted_primals(p_leaves, out_tree, out_avals, f"Custom VJP fwd rule of {name}", "fwd")
            trees.append(r_tree)
            return [*fitted, *r_leaves]
        closed = stage(flat_fwd, avals)
        res_avals = [a.strip_weak_type() for a in closed.out_avals[len(out_avals):]]
        closed = with_output_types(closed, [*out_avals, *res_avals])
        return closed, trees[0], res_avals

    def _flat_bwd(self, static, in_tree, avals, res_tree, out_tree, name):
        num_res = res_tree.num_leaves
        args_example = tree_unflatten(in_tree, [0] * len(avals))
        num_args = len(args_example)

        def flat_bwd(*leaves):
            residuals = tree_unflatten(res_tree, leaves[:num_res])
            cts = tree_unflatten(out_tree, leaves[num_res:])
            nondiff = [static[k] for k in range(len(static))]
            out = self.bwd(*nondiff, residuals, cts)
            if isinstance(out, list):
                out = tuple(out)
            if not isinstance(out, tuple) or len(out) != num_args:
                got = f"a tuple of length {len(out)}" if isinstance(out, tuple) else f"a {type(out).__name__}"
                raise TypeError(at_user_line(
                    f"Custom VJP bwd rule of {name} must produce a tuple of length equal to the number of "
                    f"(differentiable) arguments of the function, {num_args}, but got {got}"))
            flat = []
            for k, (ct, arg) in enumerate(zip(out, args_example, strict=True)):
                arg_leaves, arg_tree = tree_flatten(arg)
                start = len(flat)
                arg_avals = avals[start:start + len(arg_leaves)]
                if ct is None:
                    flat += [ad_util.zeros(tangent_aval(a)) for a in arg_avals]
                    continue
                ct_leaves, ct_tree = tree_flatten(ct, is_leaf=lambda x: x is None)  # None: a zero leaf
                if len(ct_leaves) != len(arg_leaves) or (ct_tree != arg_tree and None not in ct_leaves):
                    raise TypeError(at_user_line(
                        f"Custom VJP bwd rule of {name} must produce an output with the same container (pytree) "
                        f"structure as the args tuple of the function: its output {k} has structure {ct_tree}, "
                        f"argument {k} {arg_tree}"))
                for j, (c, aval) in enumerate(zip(ct_leaves, arg_avals, strict=True)):
                    t_aval = tangent_aval(aval)
                    if c is None or aval.dtype.kind not in "fc":
                        flat.append(ad_util.zeros(t_aval))
                        continue
                    fitted = _conformed(c, t_aval)
                    if fitted is None:
                        path = _leaf_path(arg, j) or ""
                        raise ValueError(at_user_line(
                            f"Custom VJP bwd rule of {name} must produce an output with the same shapes/dtypes as "
                            f"the args tuple of the function: at output[{k}]{path} of bwd, expected a cotangent "
                            f"of type {t_aval.str_short()} but got {_aval_text(c)}"))
                    flat.append(fitted)
            return flat
        return flat_bwd

