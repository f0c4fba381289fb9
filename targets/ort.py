"""ONNX Runtime backend (target ``cpu``): an offline-optimized ``model.ort.onnx`` and a runner.

The saved model is optimized at the profile's ``offline_optimization`` level. ORT's own docs
advise against saving at level "all" for another machine: its NCHWc layout transforms depend
on the host's instruction set; ORT applies them again when the device loads the model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx_ir as ir

from compiler import ortsession
from compiler.options import Option
from compiler.profile import TargetProfile
from targets.base import Availability, Backend, Engine, Runner
from targets.registry import register

ENGINE_FILE = "model.ort.onnx"


@register
class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"
    options = {
        "provider": Option(str, "CPUExecutionProvider", "the execution provider the engine runs on"),
        "offline_optimization": Option(str, "extended", "ORT graph optimization level baked into model.ort.onnx",
                                       choices=("disabled", "basic", "extended", "all")),
    }
    # ORT CPU kernels for these exist in onnxruntime 1.31 (contrib ops: docs/ContribOperators.md).
    accepts = frozenset({
        "LayerNormalization",
        "Gelu",
        "com.microsoft::Gelu",
        "com.microsoft::FastGelu",
        "com.microsoft::BiasGelu",
        "com.microsoft::SkipLayerNormalization",
        "com.microsoft::MultiHeadAttention",
        "com.microsoft::Attention",
    })

    def available(self, profile: TargetProfile) -> Availability:
        try:
            import onnxruntime as ort
        except ImportError as e:
            return Availability(False, False, f"onnxruntime is not installed ({e})")
        provider = profile.option("provider", "CPUExecutionProvider")
        versions = {"onnxruntime": ort.__version__}
        if provider not in ort.get_available_providers():
            return Availability(
                True, False,
                f"execution provider {provider} is not available here (have {', '.join(ort.get_available_providers())})",
                versions,
            )
        return Availability(True, True, f"onnxruntime {ort.__version__} with {provider}", versions)

    def compile(self, model: ir.Model, model_path: Path, profile: TargetProfile, precision: str, workdir: Path) -> Engine:
        import onnxruntime as ort

        level = profile.option("offline_optimization", "extended")
        if level not in ortsession.LEVELS:
            raise ValueError(f"{profile.path}: options.offline_optimization must be one of {list(ortsession.LEVELS)}, got {level!r}")
        so = ortsession.options(1, level)
        so.optimized_model_filepath = str(workdir / ENGINE_FILE)
        provider = profile.option("provider", ortsession.CPU)
        # Creating the session performs the optimization and writes the file.
        ortsession.session(model_path, provider=provider, so=so)
        return Engine(
            backend=self.name, precision=precision, dir=workdir, entry=ENGINE_FILE, files=[ENGINE_FILE],
            info={"provider": provider, "offline_optimization": level, "onnxruntime": ort.__version__},
        )

    def load(self, engine: Engine, threads: int = 1) -> Runner:
        return OrtRunner(engine.dir / engine.entry, engine.info.get("provider", "CPUExecutionProvider"), threads)


class OrtRunner(Runner):
    def __init__(self, path: Path, provider: str, threads: int):
        self.session = ortsession.session(path, threads=threads, provider=provider)
        self.input_names = tuple(i.name for i in self.session.get_inputs())
        self.output_names = tuple(o.name for o in self.session.get_outputs())

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        outs = self.session.run(None, {n: feeds[n] for n in self.input_names})
        return dict(zip(self.output_names, outs))
