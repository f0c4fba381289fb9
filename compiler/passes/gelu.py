"""GELU fusion (onnxscript's ORT rules), for targets that accept ORT's contrib ops:

    0.5·x·(1 + erf(x/√2))                     → com.microsoft::Gelu(x)
    0.5·x·(1 + tanh(√(2/π)·(x + 0.044715x³))) → com.microsoft::FastGelu(x)
    Gelu(x + b)  (b a constant bias)          → com.microsoft::BiasGelu(x, b)
"""

from __future__ import annotations

from onnxscript.rewriter.ort_fusions import bias_gelu, erfgelu, gelu

from compiler.passes._adapters import RulesPass
from compiler.passes.base import register_pass


@register_pass
class Gelu(RulesPass):
    name = "gelu"
    description = "fuse decomposed GELU (erf / tanh forms) and Gelu(x + bias) into ORT Gelu/FastGelu/BiasGelu"
    emits = frozenset({"com.microsoft::Gelu"})

    def rules(self):
        g = frozenset({"com.microsoft::Gelu"})
        fast = frozenset({"com.microsoft::FastGelu"})
        bias = frozenset({"com.microsoft::BiasGelu"})
        return [
            *[("gelu_erf", r, g) for r in erfgelu.rules.rules],
            ("gelu_tanh", gelu._tanh_rule, fast),
            ("gelu_erf", gelu._erf_rule, g),
            *[("bias_gelu", r, bias) for r in bias_gelu.bias_gelu_rules.rules],
        ]
