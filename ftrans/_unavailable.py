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

# JAX's public user-facing names beyond the probe (JAX 0.10), not all ported: a missing one
# says it is not there yet, as a probed one does, and the README's "Not there yet" table lists
# them (`python benchmarks/api_coverage.py --beyond --markdown`). Not listed: the `*_p`
# primitives, JAX's internal modules, and its experimental float8/float4 dtypes.
MORE_JAX_NAMES = {
    "jax": """custom_gradient custom_batching jacobian make_mesh named_scope device_count local_device_count
        default_device dlpack float0 live_arrays print_environment_info process_count process_index
        effects_barrier""",
    "jax.numpy": """acos acosh asin asinh atan atan2 atanh apply_along_axis apply_over_axes argpartition
        astype average bartlett blackman block broadcast_arrays broadcast_shapes cbrt choose compress concat
        copy corrcoef cov deg2rad degrees delete diag_indices diag_indices_from divmod empty_like extract
        fabs fill_diagonal float_power fmax fmin frexp fromfunction gcd geomspace gradient hamming hanning
        histogram histogram2d histogramdd histogram_bin_edges i0 indices insert intersect1d isin isreal
        iscomplex isscalar ix_ kaiser lcm ldexp lexsort logical_and logical_not logical_or logical_xor
        mask_indices matrix_transpose modf nanargmax nanargmin nancumprod nancumsum nanmedian nanpercentile
        nanprod nanquantile nanstd nanvar ndim negative packbits partition permute_dims place poly polyadd
        polyder polydiv polyfit polyint polymul polysub positive put rad2deg radians ravel_multi_index
        reciprocal remainder resize roots setdiff1d setxor1d sinc sort_complex split trapezoid
        tril_indices tril_indices_from triu_indices triu_indices_from trim_zeros true_divide union1d
        unique_all unique_counts unique_inverse unique_values unpackbits unravel_index unwrap vander
        vecdot vectorize""",
    "jax.numpy.linalg": """cond cross diagonal matrix_norm matrix_rank matrix_transpose multi_dot outer
        tensordot tensorinv tensorsolve trace vecdot vector_norm eigvals svdvals""",
    "jax.lax": """cbrt clz complex conj imag real is_finite nextafter population_count shift_left
        shift_right_logical shift_right_arithmetic bitcast_convert_type reduce_and reduce_or reduce_xor
        reduce_prod reduce reduce_precision cumlogsumexp cummin sort_key_val approx_max_k approx_min_k
        conv_transpose conv_general_dilated_patches conv_with_general_padding ragged_dot scatter scatter_add
        scatter_mul scatter_min scatter_max gather zeros_like_array full_like broadcast
        collapse tie_in optimization_barrier axis_size pshuffle pbroadcast bessel_i0e bessel_i1e igamma
        igammac igamma_grad_a random_gamma_grad betainc zeta polygamma lgamma digamma erfc
        linalg""",
    "jax.scipy.special": """bernoulli bessel_jn beta betainc boxcox boxcox1p comb dawsn entr erfcx exp1 expi
        expn factorial fresnel gamma gammainc gammaincc gammasgn hyp1f1 hyp2f1 i0 i0e i1 i1e kl_div
        loggamma multigammaln ndtr ndtri log_ndtr owens_t poch rel_entr sici spence sph_harm_y wofz
        zeta""",
    "jax.scipy.stats": """bernoulli betabinom binom cauchy chi2 dirichlet expon gaussian_kde gennorm geom
        gumbel_l gumbel_r laplace logistic mode multinomial nbinom pareto rankdata sem truncnorm uniform
        vonmises wrapcauchy""",
    "jax.scipy.linalg": """block_diag circulant companion eigh_tridiagonal expm_frechet funm hadamard hankel
        hessenberg hilbert pascal polar schur solve_sylvester sqrtm toeplitz cholesky det eigh inv lu_factor
        lu_solve qr solve svd""",
    "jax.random": "clone key_impl multinomial",
    "jax.nn": """dot_product_attention identity log1mexp sparse_plus sparse_sigmoid tanh""",
    "jax.nn.initializers": "delta_orthogonal",
    "jax.tree_util": """all_leaves flatten_one_level is_tree_node register_pytree_with_keys
        register_pytree_with_keys_class register_static tree_broadcast tree_reduce_associative
        treedef_children treedef_is_leaf treedef_tuple""",
    "jax.tree": "broadcast reduce_associative static",
    "jax.debug": "visualize_array_sharding inspect_array_sharding log",
}
MORE_JAX_NAMES = {module: tuple(dict.fromkeys(names.split())) for module, names in MORE_JAX_NAMES.items()}


def jax_module_of(module):
    """'ftrans.numpy' -> 'jax.numpy'."""
    return "jax" + module[len("ftrans"):] if module.startswith("ftrans") else module


def missing_name_error(module, name):
    """The AttributeError for `module.name` (a module's `__getattr__` found no such name)."""
    jax_module = jax_module_of(module)
    if name in JAX_NAMES.get(jax_module, ()) or name in MORE_JAX_NAMES.get(jax_module, ()):
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
