"""jax.nn's functions (activations, softmax, one_hot, standardize, ...), `ft.nn.initializers`, and
modules as pytrees in the manner of Equinox (Linear, MLP, Conv, LayerNorm, BatchNorm, Dropout,
Embedding, Sequential, GRUCell, LSTMCell; tree_at, count_params, summary)."""
from ftrans.nn import initializers
from ftrans.nn._functions import (celu, elu, gelu, glu, hard_sigmoid, hard_silu, hard_swish, hard_tanh, leaky_relu,
                                  log_sigmoid, log_softmax, logmeanexp, logsumexp, mish, one_hot, relu, relu6,
                                  selu, sigmoid, silu, soft_sign, softmax, softplus, squareplus, standardize, swish)
from ftrans.nn._layers import (MLP, BatchNorm, BatchNormState, Conv, Conv1d, Conv2d, Dropout, Embedding, LayerNorm,
                               Linear, Sequential)
from ftrans.nn._module import Lambda, Module, count_params, field, inference_mode, summary, tree_at
from ftrans.nn._recurrent import GRUCell, LSTMCell
from ftrans._unavailable import missing_name_hook as _missing_name_hook

__all__ = ["celu", "elu", "gelu", "glu", "hard_sigmoid", "hard_silu", "hard_swish", "hard_tanh", "initializers",
           "leaky_relu", "log_sigmoid", "log_softmax", "logmeanexp", "logsumexp", "mish", "one_hot", "relu", "relu6",
           "selu", "sigmoid", "silu", "soft_sign", "softmax", "softplus", "squareplus", "standardize", "swish"]
__all__ += ["BatchNorm", "BatchNormState", "Conv", "Conv1d", "Conv2d", "Dropout", "Embedding", "GRUCell", "LSTMCell",
            "Lambda", "LayerNorm", "Linear", "MLP", "Module", "Sequential", "count_params", "field", "inference_mode",
            "summary", "tree_at"]


__getattr__ = _missing_name_hook(__name__)  # a JAX name not ported yet says so
