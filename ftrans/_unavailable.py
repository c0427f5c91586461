"""JAX's names that programs commonly use, and the error for one that ftrans lacks.

`JAX_NAMES` lists, per JAX module, the public names a JAX program is likely to use
(benchmarks/api_coverage.py probes them). A module of ours whose `__getattr__` is
asked for one of them that it does not have raises an AttributeError that says it is
not there *yet*, naming JAX's name; any other name gets Python's usual message.
"""
from __future__ import annotations

JAX_NAMES = {
    "jax": """grad jit vmap jvp vjp value_and_grad jacfwd jacrev hessian linearize make_jaxpr eval_shape
        ShapeDtypeStruct linear_transpose block_until_ready disable_jit Array devices device_get device_put
        checkpoint remat custom_jvp custom_vjp pure_callback debug tree_util tree lax numpy scipy random nn
        config pmap local_devices default_backend ensure_compile_time_eval closure_convert clear_caches
        named_call typeof""",
    "jax.debug": "print callback breakpoint",
    "jax.tree": "map leaves structure flatten unflatten reduce all map_with_path flatten_with_path leaves_with_path",
    "jax.tree_util": """tree_map tree_flatten tree_unflatten tree_leaves tree_structure register_pytree_node
        register_pytree_node_class register_dataclass Partial tree_reduce tree_all tree_map_with_path keystr
        tree_flatten_with_path tree_leaves_with_path PyTreeDef DictKey GetAttrKey SequenceKey tree_transpose""",
    "jax.numpy": """array asarray zeros ones full empty zeros_like ones_like full_like arange linspace logspace eye
        identity meshgrid tri diag diagonal trace triu tril sin cos tan arcsin arccos arctan arctan2 sinh cosh
        tanh arcsinh arccosh arctanh exp exp2 expm1 log log2 log10 log1p logaddexp sqrt square abs sign floor
        ceil round trunc clip maximum minimum where power mod floor_divide isnan isinf isfinite nan_to_num sum
        prod mean var std max min argmax argmin all any cumsum cumprod median quantile percentile nansum
        nanmean count_nonzero reshape ravel transpose swapaxes moveaxis expand_dims squeeze concatenate stack
        vstack hstack split tile repeat roll flip pad broadcast_to take take_along_axis sort argsort
        searchsorted unique nonzero argwhere einsum dot matmul tensordot inner outer vdot kron cross allclose
        isclose array_equal interp convolve bincount diff select piecewise atleast_1d atleast_2d finfo iinfo
        result_type promote_types float32 float64 int32 int64 bool_ pi inf nan newaxis ndarray fft linalg
        hypot logaddexp2 rint fmod copysign signbit heaviside dstack column_stack append array_split r_ c_
        atleast_3d fliplr flipud rot90 ediff1d nanmax nanmin digitize correlate polyval""",
    "jax.numpy.linalg": "norm inv solve det slogdet cholesky eigh eig svd qr lstsq pinv matrix_power eigvalsh",
    "jax.numpy.fft": "fft ifft rfft irfft fft2 ifft2 fftn ifftn fftfreq rfftfreq fftshift hfft",
    "jax.lax": """add sub mul div neg abs sign exp log sin cos tanh sqrt rsqrt pow integer_pow max min select
        select_n clamp convert_element_type broadcast_in_dim reshape transpose squeeze expand_dims concatenate
        pad slice slice_in_dim dynamic_slice dynamic_update_slice dynamic_index_in_dim dynamic_slice_in_dim
        dynamic_update_slice_in_dim index_in_dim dot dot_general batch_matmul conv_general_dilated conv
        reduce_window reduce_sum reduce_max reduce_min argmax argmin iota broadcasted_iota full stop_gradient
        cond switch scan fori_loop while_loop map associative_scan top_k sort cumsum cumprod cummax erf
        erf_inv lgamma digamma logistic reduce_precision rev rem round atan2 psum igamma igammac igamma_grad_a
        random_gamma_grad betainc""",
    "jax.scipy": "special linalg stats",
    "jax.scipy.special": """erf erfc erfinv expit logit gammaln digamma polygamma xlogy xlog1py logsumexp
        gammainc gammaincc betainc""",
    "jax.scipy.linalg": "solve_triangular cho_factor cho_solve lu expm",
    "jax.scipy.stats": "norm multivariate_normal t beta gamma poisson chi2",
    "jax.nn": """relu relu6 gelu sigmoid softmax log_softmax softplus silu swish elu selu celu leaky_relu
        log_sigmoid hard_tanh glu one_hot logsumexp standardize initializers""",
    "jax.random": """PRNGKey key split fold_in normal uniform randint bernoulli categorical choice permutation
        truncated_normal gamma beta dirichlet exponential gumbel multivariate_normal key_data""",
}
JAX_NAMES = {module: tuple(names.split()) for module, names in JAX_NAMES.items()}


def jax_module_of(module):
    """'ftrans.numpy' -> 'jax.numpy'."""
    return "jax" + module[len("ftrans"):] if module.startswith("ftrans") else module


def missing_name_error(module, name):
    """The AttributeError for `module.name` (a module's `__getattr__` found no such name)."""
    jax_module = jax_module_of(module)
    if name in JAX_NAMES.get(jax_module, ()):
        return AttributeError(f"{module} has no `{name}` yet ({jax_module}.{name} is not ported to ftrans; "
                              f"the README's 'Not there yet' lists what is missing)")
    return AttributeError(f"module {module!r} has no attribute {name!r}")


def missing_name_hook(module):
    """The `__getattr__` of ftrans module `module`: a JAX name it lacks says it is not ported
    yet; any other name is the usual AttributeError.

        __getattr__ = missing_name_hook(__name__)
    """
    def __getattr__(name):
        raise missing_name_error(module, name)
    return __getattr__
