"""Merge a constant zero Pad into the following Conv's ``pads`` (onnxscript rules); the
"same"-padding subgraphs of TF-style models (EfficientNet) end this way once their pad amounts
are folded to constants:

    Conv(Pad(x, p, 0), W) → Conv(x, W, pads = p_spatial + conv.pads)
"""

from __future__ import annotations

from onnxscript.rewriter.rules.common import fuse_pad_into_conv_rule, normalize_pad_format_conv_rule

from compiler.passes._adapters import RulesPass
from compiler.passes.base import register_pass


@register_pass
class PadConv(RulesPass):
    name = "pad_conv"
    description = "merge constant zero Pad into the following Conv's pads"

    def rules(self):
        none = frozenset()
        return [("normalize_conv_pads", normalize_pad_format_conv_rule, none), ("pad_conv", fuse_pad_into_conv_rule, none)]
