"""The public differentiation API: jvp, linearize, vjp, grad, value_and_grad,
jacfwd, jacrev, hessian. Each flattens its pytrees and calls interpreters.ad."""
from __future__ import annotations

import functools

import numpy as np

from ftrans._api_util import _leaf_path, check_callable, differentiation_argnums, is_index, resolve_argnums
from ftrans.tree_util import tree_flatten, tree_unflatten
from interpreters import ad, ad_eager, transformed  # noqa: F401  (transformed: registers run_transformed)
from ir.core import float0
from ir.errors import api_boundary, at_user_line
from ir.markers import Zero, tangent_aval
from ir.primitive import as_array
from ir.primitives import ad_util
from ir.tracing import Tracer, current_trace, get_aval


def _aval(x, what):
    try:
        return get_aval(x)
    except TypeError:
        raise TypeError(at_user_line(f"{what} is a {type(x).__name__}, not an array")) from None


def _materialize(t, aval, like=None):
    """A Zero tangent/cotangent as an actual zero array (float0 for integer values)."""
    return ad_util.zeros(tangent_aval(aval), like) if type(t) is Zero else t


def _leaf_names(name, tree):
    """Readable names of a tree's leaves, e.g. "argument 0['w']"."""
    return [f"{name}{_leaf_path(tree, i)}" for i in range(len(tree_flatten(tree)[0]))]


def split_aux(out, what):
    """(output, aux) of what a has_aux=True function returned, as JAX checks it."""
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        if isinstance(out, (tuple, list)):
            got = f"a {type(out).__name__} of {len(out)} entries"
        elif isinstance(out, Tracer) or hasattr(out, "shape"):
            got = f"one array, of shape {get_aval(out).shape if isinstance(out, Tracer) else out.shape}"
        else:
            got = f"a {type(out).__name__}"
        raise TypeError(at_user_line(f"{what} with has_aux=True: the function must return a pair "
                                     f"(output, aux), but it returned {got}"))
    return out


class _FlatFunction:
    """`fun` as a function of flat leaves returning flat leaves; after a call it
    knows the output's structure (and the aux value, with has_aux)."""

    def __init__(self, fun, in_tree, has_aux=False, what="grad"):
        self.fun, self.in_tree, self.has_aux, self.what = fun, in_tree, has_aux, what
        self.out_tree = self.aux = None

    def __call__(self, *leaves):
        out = self.fun(*tree_unflatten(self.in_tree, leaves))
        if self.has_aux:
            out, self.aux = split_aux(out, self.what)
        out_leaves, self.out_tree = tree_flatten(out)
        return out_leaves


# -------------------- forward mode --------------------

@api_boundary
def jvp(fun, primals, tangents, has_aux=False):
    """(fun(*primals), the derivative of fun at primals along tangents), as JAX's jvp;
    with has_aux=True `fun` returns (output, aux), and jvp (output, tangent, aux)."""
    check_callable(fun, "jvp")
    if not isinstance(primals, (tuple, list)) or not isinstance(tangents, (tuple, list)):
        raise TypeError(at_user_line("jvp: primals and tangents must be tuples or lists of arguments, "
                                     f"got {type(primals).__name__} and {type(tangents).__name__}"))
    primal_leaves, in_tree = tree_flatten(tuple(primals))
    tangent_leaves, tangent_tree = tree_flatten(tuple(tangents))
    if tangent_tree != in_tree:
        raise ValueError(at_user_line(f"jvp: primal and tangent arguments must have the same structure; "
                                      f"primals have {in_tree}, tangents have {tangent_tree}"))
    p_avals = _avals_of_arguments(primal_leaves, tuple(primals), "primals")
    _check_tangents("jvp", tuple(primals), p_avals, tangent_leaves)
    tangent_in = [Zero(tangent_aval(a)) if tangent_aval(a).dtype == float0 else t
                  for a, t in zip(p_avals, tangent_leaves, strict=True)]
    flat_fun = _FlatFunction(fun, in_tree, has_aux, "jvp")
    primals_out, tangents_out = ad.jvp_flat(flat_fun, primal_leaves, tangent_in)
    tangents_out = [as_array(_materialize(t, get_aval(p), p)) for p, t in zip(primals_out, tangents_out, strict=True)]
    out = (tree_unflatten(flat_fun.out_tree, [as_array(p) for p in primals_out]),
           tree_unflatten(flat_fun.out_tree, tangents_out))
    return (*out, _strip_tracers(flat_fun.aux)) if has_aux else out


def _check_tangents(what, primals, primal_avals, tangent_leaves):
    """A ValueError naming the first tangent whose shape or dtype does not fit its primal."""
    for i, (p_aval, t) in enumerate(zip(primal_avals, tangent_leaves, strict=True)):
        t_aval, expected = get_aval_or_none(t), tangent_aval(p_aval)
        if t_aval is None or t_aval.shape != p_aval.shape or t_aval.dtype != expected.dtype:
            name = f"primals{_leaf_path(primals, i)}"  # built only now: a path costs a walk of the tree
            t_aval = _aval(t, "tangent of " + name)
            raise ValueError(at_user_line(
                f"{what}: the tangent of {name} must be {expected.strip_weak_type().str_short()} to match its primal "
                f"{p_aval.str_short()}, got {t_aval.str_short()}"))


@api_boundary
def linearize(fun, *primals, has_aux=False):
    """(fun(*primals), f_jvp) where f_jvp(*tangents) evaluates the linearized function;
    with has_aux=True `fun` returns (output, aux), and linearize (output, f_jvp, aux)."""
    check_callable(fun, "linearize")
    primal_leaves, in_tree = tree_flatten(primals)
    in_avals = _avals_of_arguments(primal_leaves, tuple(primals))
    wrt = [a.dtype.kind in "fc" for a in in_avals]
    flat_fun = _FlatFunction(fun, in_tree, has_aux, "linearize")
    primals_out, linear = ad.linearize_flat(flat_fun, primal_leaves, wrt)

    @api_boundary
    def f_jvp(*tangents):
        tangent_leaves, tree = tree_flatten(tangents)
        if tree != in_tree:
            raise ValueError(at_user_line(f"linearize: f_jvp expects tangents structured as {in_tree}, got {tree}"))
        _check_tangents("linearize: f_jvp", primals, in_avals, tangent_leaves)
        nonzero = iter(linear(*[t for t, w in zip(tangent_leaves, wrt) if w]))
        outs = [as_array(next(nonzero) if nz else ad_util.zeros(tangent_aval(get_aval(p)), p))
                for p, nz in zip(primals_out, linear.nonzero_outputs, strict=True)]
        return tree_unflatten(flat_fun.out_tree, outs)

    out = tree_unflatten(flat_fun.out_tree, [as_array(p) for p in primals_out])
    return (out, f_jvp, _strip_tracers(flat_fun.aux)) if has_aux else (out, f_jvp)


# -------------------- reverse mode --------------------

def get_aval_or_none(x):
    try:
        return get_aval(x)
    except TypeError:
        return None


def _avals_of_arguments(leaves, args, prefix="argument "):
    try:
        return [get_aval(x) for x in leaves]
    except TypeError:  # name the culprit only now: building names costs on every call
        return [_aval(x, name) for x, name in zip(leaves, _leaf_names(prefix, args))]


def _flatten_primals(primals):
    """(leaves, structure, avals, which leaves are differentiated) of a tuple of arguments."""
    primal_leaves, in_tree = tree_flatten(primals)
    in_avals = _avals_of_arguments(primal_leaves, primals)
    return primal_leaves, in_tree, in_avals, [a.dtype.kind in "fc" for a in in_avals]


def _linearize(fun, primal_leaves, in_tree, in_avals, wrt, has_aux, what):
    """Run `fun` once; return (the flat function, which knows the output
    structure and aux, the primal outputs, the linear map's reverse-mode interface)."""
    flat_fun = _FlatFunction(fun, in_tree, has_aux, what)
    if current_trace() is None:  # eager: record a tape (same rules, compiled per primitive signature)
        primals_out, linear = ad_eager.vjp_flat(flat_fun, primal_leaves, in_avals, wrt)
    else:  # under a transformation: linearize and transpose as IR
        primals_out, linear = ad.linearize_flat(flat_fun, primal_leaves, wrt)
    return flat_fun, primals_out, linear


def _vjp(fun, primals, has_aux, what="vjp"):
    primal_leaves, in_tree, in_avals, wrt = _flatten_primals(tuple(primals))
    flat_fun, primals_out, linear = _linearize(fun, primal_leaves, in_tree, in_avals, wrt, has_aux, what)
    vjp_fn = VJPFunction(linear, in_tree, in_avals, wrt, flat_fun.out_tree, [get_aval(p) for p in primals_out])
    out = tree_unflatten(flat_fun.out_tree, [as_array(p) for p in primals_out])
    return out, vjp_fn, (_strip_tracers(flat_fun.aux) if has_aux else None)


def _input_cotangents(linear, cts, in_avals, wrt):
    """The linear map's transpose at `cts`, one cotangent per input leaf
    (zeros, float0 for integers, where an input is not differentiated)."""
    cts_in = iter(linear.transpose(cts))
    like = cts[0] if cts else None  # zeros go where the cotangents live (NumPy or CuPy)
    return [as_array(_materialize(next(cts_in), aval, like) if w else ad_util.zeros(tangent_aval(aval), like))
            for aval, w in zip(in_avals, wrt, strict=True)]


class VJPFunction:
    """What `vjp` returns: call it with a cotangent shaped like the output to get
    the cotangents of the inputs (a tuple, one per primal argument)."""

    def __init__(self, linear, in_tree, in_avals, wrt, out_tree, out_avals):
        self.linear, self.in_tree, self.in_avals, self.wrt = linear, in_tree, in_avals, wrt
        self.out_tree, self.out_avals = out_tree, out_avals

    @api_boundary
    def __call__(self, cotangent):
        ct_leaves, ct_tree = tree_flatten(cotangent)
        if ct_tree != self.out_tree:
            raise ValueError(at_user_line(f"vjp: the cotangent must be structured like the output: "
                                          f"output {self.out_tree}, cotangent {ct_tree}"))
        for i, (ct, aval) in enumerate(zip(ct_leaves, self.out_avals, strict=True)):
            ct_aval = _aval(ct, f"cotangent leaf {i}")
            if ct_aval.shape != aval.shape or ct_aval.dtype != tangent_aval(aval).dtype:
                raise ValueError(at_user_line(f"vjp: cotangent leaf {i} must be {tangent_aval(aval).str_short()} "
                                              f"like the output, got {ct_aval.str_short()}"))
        cts = [ct for ct, nz in zip(ct_leaves, self.linear.nonzero_outputs, strict=True) if nz]
        return tuple(tree_unflatten(self.in_tree, _input_cotangents(self.linear, cts, self.in_avals, self.wrt)))


def _strip_tracers(tree):
    """aux values leave the differentiation: a JVP tracer gives up its primal."""
    leaves, treedef = tree_flatten(tree)
    return tree_unflatten(treedef, [as_array(_primal_of(x)) for x in leaves])


def _primal_of(x):
    """The value under the tracers of finished differentiations."""
    while True:
        if isinstance(x, ad.JVPTracer) and not x._trace.alive:
            x = x.primal
        elif isinstance(x, ad_eager.TapeTracer) and not x._trace.alive:
            x = x.value
        else:
            return x


@api_boundary
def vjp(fun, *primals, has_aux=False):
    """(fun(*primals), vjp_fn[, aux]): vjp_fn(cotangent) pulls a cotangent back to the inputs.
    Integer and bool inputs get float0 zeros, as in JAX."""
    check_callable(fun, "vjp")
    out, vjp_fn, aux = _vjp(fun, primals, has_aux)
    return (out, vjp_fn, aux) if has_aux else (out, vjp_fn)


@api_boundary
def value_and_grad(fun, argnums=0, has_aux=False, holomorphic=False):
    """A function returning (fun(*args), the gradient of fun with respect to args[argnums]);
    with a tuple `argnums`, a tuple of gradients in its order. Complex numbers as `grad`."""
    check_callable(fun, "value_and_grad")
    gradient = _Gradient(fun, argnums, has_aux, "value_and_grad", holomorphic)

    @functools.wraps(fun)
    @api_boundary
    def value_and_grad_f(*args, **kwargs):
        return gradient(args, kwargs)
    return value_and_grad_f


@api_boundary
def grad(fun, argnums=0, has_aux=False, holomorphic=False):
    """The gradient of scalar-valued `fun` with respect to args[argnums] (an int, or a
    tuple of distinct ints: then a tuple of gradients in its order).

    Complex numbers follow JAX's convention. For a real-valued `fun` of a complex z
    the gradient is the cotangent of 1.0 pulled back by transposes that pair a
    cotangent c with a tangent t as Re(c t): df = Re(g dz), so g = 2 conj(df/dz-bar)
    = df/dx - i df/dy (grad(lambda z: abs(z)**2)(z) == 2 * conj(z)); its conjugate is
    the direction of steepest ascent. With holomorphic=True (complex inputs and
    output) it is the complex derivative f'(z)."""
    check_callable(fun, "grad")
    gradient = _Gradient(fun, argnums, has_aux, "grad", holomorphic)

    # a boundary of its own, calling no other: its errors show one ftrans frame
    @functools.wraps(fun)
    @api_boundary
    def grad_f(*args, **kwargs):
        value, grads = gradient(args, kwargs)
        return (grads, value[1]) if has_aux else grads
    return grad_f


class _Gradient:
    """What grad_f and value_and_grad_f compute: (value, gradients) at a call."""

    def __init__(self, fun, argnums, has_aux, what, holomorphic=False):
        self.fun, self.argnums, self.has_aux, self.what = fun, argnums, has_aux, what
        self.holomorphic = bool(holomorphic)
        self.nums = differentiation_argnums(argnums, what)
        self.positions_by_arity = {}  # the differentiated positions per number of positional arguments

    def __call__(self, args, kwargs):
        nums = self.positions_by_arity.get(len(args))
        if nums is None:
            nums = self.positions_by_arity[len(args)] = resolve_argnums(self.nums, len(args), self.what,
                                                                        self.argnums)
        fun = self.fun

        def diff_fun(*diff_args):
            full = list(args)
            for i, value in zip(nums, diff_args, strict=True):
                full[i] = value
            return fun(*full, **kwargs)

        primal_leaves, in_tree, in_avals, wrt = _flatten_primals(tuple(args[i] for i in nums))
        if False in wrt:
            _raise_not_differentiable(args, nums, in_avals, wrt)
        if self.holomorphic and any(a.dtype.kind != "c" for a in in_avals):
            aval = next(a for a in in_avals if a.dtype.kind != "c")
            raise TypeError(at_user_line(f"{self.what} with holomorphic=True requires inputs with complex dtype, "
                                         f"but got {aval.dtype.name}"))
        flat_fun, primals_out, linear = _linearize(diff_fun, primal_leaves, in_tree, in_avals, wrt,
                                                   self.has_aux, self.what)
        out_aval = get_aval(primals_out[0]) if len(primals_out) == 1 else None
        if out_aval is None or out_aval.shape != ():
            shape = out_aval.shape if out_aval is not None else f"a pytree of {len(primals_out)} leaves"
            raise TypeError(at_user_line(
                f"grad requires a scalar output, but the function returned shape {shape}. "
                "For non-scalar outputs use ft.jacrev (full Jacobian) or ft.vjp (with your own cotangent)"))
        check_output_dtype(self.what, out_aval.dtype, self.holomorphic)
        # a NumPy scalar, not a 0-d array: it meets NumPy and CuPy values alike
        cts = [out_aval.dtype.type(1)] if linear.nonzero_outputs[0] else []
        grads = tree_unflatten(in_tree, _input_cotangents(linear, cts, in_avals, wrt))
        grads = grads[0] if is_index(self.argnums) else grads
        out = tree_unflatten(flat_fun.out_tree, [as_array(primals_out[0])])
        return ((out, _strip_tracers(flat_fun.aux)) if self.has_aux else out), grads


def check_output_dtype(what, dtype, holomorphic):
    """JAX's checks of a differentiated output: real floating-point, or complex with holomorphic=True."""
    if holomorphic:
        if dtype.kind != "c":
            raise TypeError(at_user_line(f"{what} with holomorphic=True requires outputs with complex dtype, "
                                         f"but got {dtype.name}"))
    elif dtype.kind == "c":
        raise TypeError(at_user_line(
            f"{what} requires real-valued outputs (output dtype that is a sub-dtype of np.floating), but got "
            f"{dtype.name}. For holomorphic differentiation, pass holomorphic=True. For differentiation of "
            "non-holomorphic functions involving complex outputs, use ft.vjp directly"))
    elif dtype.kind != "f":
        raise TypeError(at_user_line(f"{what} requires a real floating-point output, got {dtype.name}"))


def _raise_not_differentiable(args, nums, in_avals, wrt):
    """The TypeError for an integer or bool leaf among the differentiated arguments, naming it."""
    names = [name for i in nums for name in _leaf_names(f"argument {i}", args[i])]
    name, aval = next((n, a) for n, a, w in zip(names, in_avals, wrt) if not w)
    raise TypeError(at_user_line(
        f"grad requires floating-point or complex inputs, but {name} has dtype {aval.dtype.name}. "
        "Convert it to float (e.g. x.astype(float)), or leave it out of argnums"))
