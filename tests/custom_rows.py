"""Equations of the custom-derivative and rematerialization primitives for the
per-primitive tables: each a function f(x, y) = sin(x) * y with a rule of its own.

The rules are deliberately *not* f's derivative in one visible way: custom_jvp_call's
rule and custom_vjp_call's bwd scale the derivative in x by `RULE_SCALE`, so a table
that differentiates them checks that the rule, not f, was used (`rule_gradient`)."""
from __future__ import annotations

import numpy as np

import ir
from ir.core import ShapedArray

E = ir.primitives.elementwise
RULE_SCALE = 3.0


def call_params(aval: ShapedArray):
    """custom_jvp_call's params for f, its rule's tangent 3 cos(x) y tx + sin(x) ty."""
    three = aval.dtype.type(RULE_SCALE)
    fun = ir.stage(lambda x, y: [E.mul(E.sin(x), y)], [aval, aval])
    jvp = ir.stage(lambda x, y, tx, ty: [E.mul(E.sin(x), y),
                                         E.add(E.mul(E.mul(E.mul(E.cos(x), y), three), tx), E.mul(E.sin(x), ty))],
                   [aval] * 4)
    return {"call_jaxpr": fun, "jvp_jaxpr": jvp, "num_consts": 0, "jvp_num_consts": 0, "symbolic_zeros": False,
            "name": "f"}


def vjp_params(aval: ShapedArray):
    """custom_vjp_call's params for f: residuals (cos x, sin x, y), bwd g -> (3 cos(x) y g, sin(x) g)."""
    three = aval.dtype.type(RULE_SCALE)
    fun = ir.stage(lambda x, y: [E.mul(E.sin(x), y)], [aval, aval])
    fwd = ir.stage(lambda x, y: [E.mul(E.sin(x), y), E.cos(x), E.sin(x), y], [aval, aval])
    bwd = ir.stage(lambda c, s, y, g: [E.mul(E.mul(E.mul(c, y), three), g), E.mul(s, g)], [aval] * 4)
    return {"call_jaxpr": fun, "fwd_jaxpr": fwd, "bwd_jaxpr": bwd, "num_consts": 0, "fwd_num_consts": 0,
            "bwd_num_consts": 0, "num_res": 3, "name": "f"}


def lin_params(aval: ShapedArray):
    """custom_lin's params: bwd of custom_vjp_call's row, on residuals (cos x, sin x, y)."""
    p = vjp_params(aval)
    return {"bwd_jaxpr": p["bwd_jaxpr"], "num_consts": 0, "num_res": 3, "name": "f"}


def reference(x, y):
    return np.sin(x) * y


def rule_gradient(x, y):
    """The gradient the rules give (of sum f): 3 cos(x) y, sin(x)."""
    return RULE_SCALE * np.cos(x) * y, np.sin(x)


def checkpoint_params(aval: ShapedArray, policy="nothing_saveable"):
    """checkpoint's params for f (its body: sin(x) * y)."""
    fun = ir.stage(lambda x, y: [E.mul(E.sin(x), y)], [aval, aval])
    return {"jaxpr": fun, "prevent_cse": True, "differentiated": False, "policy": policy, "names": ()}
