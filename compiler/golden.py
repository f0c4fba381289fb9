"""Golden vectors: the reference outputs every engine is compared with.

``golden/<model>/`` holds ``inputs.npz`` and ``outputs.npz`` keyed by graph input/output names,
``meta.json`` (torch version, sha256 of every array, where the inputs came from, the reference
task metric) and ``tolerances.toml``. The reference is PyTorch eager FP32 on real inputs.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import onnx_ir as ir

from compiler import ir as irh
from compiler import tolerances as tol_mod
from compiler.artifact.files import write_json
from compiler.artifact.slot import GOLDEN as GOLDEN_KIND
from compiler.artifact.slot import OutputSlot
from compiler.datasets.npz import read_npz
from compiler.datasets.samples import Samples
from compiler.errors import BadInput
from compiler.spec import ModelSpec, SourceKind

GOLDEN_ROOT = Path("golden")
GOLDEN_FILES = ("inputs.npz", "outputs.npz", "meta.json", "tolerances.toml")


@dataclass
class Golden:
    dir: Path
    inputs: dict[str, np.ndarray]
    outputs: dict[str, np.ndarray]
    meta: dict[str, Any]
    tolerances: tol_mod.Tolerances

    @classmethod
    def load(cls, directory: Path) -> Golden:
        if not directory.is_dir():
            raise BadInput(f"golden directory {str(directory)!r} does not exist.")
        for name in ("inputs.npz", "outputs.npz"):
            if not (directory / name).is_file():
                raise BadInput(f"golden directory {str(directory)!r} has no {name} "
                               "(expected inputs.npz and outputs.npz keyed by graph input/output names).")
        inputs, _ = read_npz(directory / "inputs.npz")
        outputs, _ = read_npz(directory / "outputs.npz")
        # outputs: a NaN or Inf reference cannot judge an engine. Inputs: ±Inf is data a model may
        # be meant to take (an attention mask's -inf, IsInf), NaN is taken for a broken golden set
        _check_finite(outputs, f"golden set {str(directory)!r}: outputs.npz",
                      "a reference with NaN/Inf cannot judge an engine; regenerate or fix the golden set")
        _check_finite(inputs, f"golden set {str(directory)!r}: inputs.npz",
                      "NaN inputs are taken for a broken golden set; regenerate or fix it", allow_inf=True)
        meta_path = directory / "meta.json"
        meta = {}
        if meta_path.is_file():
            try:
                meta = json.loads(meta_path.read_text())
            except (ValueError, OSError) as e:
                raise BadInput(f"{str(meta_path)!r} is not valid JSON: {e}.") from None
            if not isinstance(meta, dict):
                raise BadInput(f"{str(meta_path)!r} must hold a JSON object, found {type(meta).__name__}.")
        return cls(directory, inputs, outputs, meta, tol_mod.load(directory / "tolerances.toml"))

    @property
    def samples(self) -> int:
        return len(Samples(self.inputs))

    def check_against(self, model: ir.Model) -> None:
        """Names, dtypes and shapes of the golden arrays must match the graph's inputs/outputs."""
        self.check_interface(irh.graph_inputs(model), irh.graph_outputs(model))

    def check_interface(self, inputs: list[irh.TensorInfo], outputs: list[irh.TensorInfo]) -> None:
        _match("input", self.dir / "inputs.npz", self.inputs, inputs)
        _match("output", self.dir / "outputs.npz", self.outputs, outputs)
        batched = [t.name for t in inputs if t.shape and not isinstance(t.shape[0], int)]
        if batched and all(self.inputs[n].shape[0] == 0 for n in batched):
            raise BadInput(f"golden inputs in {str(self.dir / 'inputs.npz')!r} hold 0 samples along the batch axis "
                           f"of {batched}: they would verify nothing.")

    def copy_to(self, directory: Path) -> None:
        """The golden files an artifact carries so it verifies anywhere (same bytes)."""
        directory.mkdir()
        for name in GOLDEN_FILES:
            if (self.dir / name).is_file():
                shutil.copyfile(self.dir / name, directory / name)

    @property
    def metric_reference(self) -> dict[str, Any] | None:
        return self.meta.get("metric")


def _match(kind: str, path: Path, arrays: dict[str, np.ndarray], graph: list[irh.TensorInfo]) -> None:
    names = [t.name for t in graph]
    missing = [n for n in names if n not in arrays]
    extra = [n for n in arrays if n not in names]
    if missing or extra:
        raise BadInput(
            f"golden {kind}s in {str(path)!r} do not match the graph's {kind}s: graph has {names}, "
            f"the file has {sorted(arrays)}"
            + (f"; missing {missing}" if missing else "") + (f"; not in the graph {extra}" if extra else "") + "."
        )
    for t in graph:
        why = t.matches(arrays[t.name])
        if why:
            raise BadInput(f"golden {kind} {t.name!r} in {str(path)!r} has {why}.")


def array_sha256(a: np.ndarray) -> str:
    h = hashlib.sha256(str((a.dtype.str, a.shape)).encode())
    h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def generate(spec: ModelSpec, out_dir: Path, inputs_npz: Path | None = None, log: Callable[[str], None] = print,
             commit: bool = True) -> Path:
    """Run PyTorch eager FP32 on the spec's real inputs and write the golden set atomically.
    `commit` False: a step of a build (whose own install is the commit point), not the run."""
    if spec.source_kind is SourceKind.ONNX:
        raise BadInput(
            f"{spec.source!r} is an ONNX file: there is no PyTorch model to compute golden outputs "
            "with. Provide golden vectors with `build --golden DIR` (inputs.npz + outputs.npz)."
        )
    slot = OutputSlot(out_dir, GOLDEN_KIND, log=log)
    slot.check()
    with slot:  # held from the start: every temp file of the run (torch's caches too) lives in its scratch
        return _generate(spec, slot, inputs_npz, log, commit)


def _generate(spec: ModelSpec, slot: OutputSlot, inputs_npz: Path | None, log: Callable[[str], None], commit: bool) -> Path:
    import torch

    from compiler import torch_model

    torch.set_num_threads(1)
    module, examples = torch_model.load_torch(spec)
    if inputs_npz is not None:
        feeds, _ = read_npz(inputs_npz)
        samples = Samples(feeds, None, (f"arrays from {inputs_npz}",))
        source = f"npz {inputs_npz}"
    elif spec.golden is not None:
        samples = spec.golden.load()
        source = spec.golden.describe()
    elif (feeds := torch_model.example_feeds(module, examples, spec)) is not None:
        samples = Samples(feeds, None, ("the factory's example inputs",))
        source = f"example inputs returned by {spec.source}"
    else:
        raise BadInput(f"model {spec.name!r} names no golden inputs ([golden] in its spec, or example inputs "
                       "returned by its factory); pass --inputs NPZ.")
    in_names = torch_model.input_names_of(module, examples, spec)
    missing = [n for n in in_names if n not in samples.feeds]
    if missing:
        raise BadInput(f"golden inputs lack {missing}; the model takes {list(in_names)}, got {sorted(samples.feeds)}.")
    _check_finite(samples.feeds, source)
    feeds = {n: samples.feeds[n] for n in in_names}
    log(f"running PyTorch eager fp32 on {len(samples)} real sample(s) ({source})")
    outputs = torch_model.run_eager(module, feeds, in_names, spec)
    _check_finite(outputs, "the eager reference outputs")

    meta: dict[str, Any] = {
        "model": spec.name,
        "spec_sha256": spec.sha256,
        "reference": "pytorch-eager-fp32",
        "torch": torch.__version__,
        "source": source,
        "samples": len(samples),
        "sample_descriptions": list(samples.descriptions),
        "inputs": {k: {"shape": list(v.shape), "dtype": str(v.dtype), "sha256": array_sha256(v)} for k, v in feeds.items()},
        "outputs": {k: {"shape": list(v.shape), "dtype": str(v.dtype), "sha256": array_sha256(v)} for k, v in outputs.items()},
    }
    if spec.evaluation is not None:
        ev = spec.evaluation
        data = ev.data.load()
        if data.labels is None:
            raise BadInput(f"evaluation set of {spec.name!r} ({ev.data.describe()}) has no labels.")
        logits = torch_model.run_eager(module, {n: data.feeds[n] for n in in_names}, in_names, spec)[ev.output]
        from compiler.verify import top1_accuracy

        acc = top1_accuracy(logits, data.labels)
        meta["metric"] = {"name": ev.metric, "output": ev.output, "reference": acc, "samples": len(data), "source": ev.data.describe()}
        log(f"reference {ev.metric} on {len(data)} labelled samples: {acc:.4f}")

    kinds = {n: spec.output_kind(n) for n in outputs}
    tmp = slot.staging()
    np.savez(tmp / "inputs.npz", **feeds)
    np.savez(tmp / "outputs.npz", **outputs)
    write_json(tmp / "meta.json", meta)
    (tmp / "tolerances.toml").write_text(tol_mod.render(kinds, spec.evaluation is not None))
    slot.install(tmp, commit=commit)
    return slot.final


def _check_finite(arrays: dict[str, np.ndarray], where: str, advice: str = "", allow_inf: bool = False) -> None:
    for k, v in arrays.items():
        if not np.issubdtype(v.dtype, np.floating):
            continue
        bad_mask = np.isnan(v) if allow_inf else ~np.isfinite(v)
        if bad_mask.any():
            what = "NaN" if allow_inf else "NaN or Inf"
            raise BadInput(f"{where}: tensor {k!r} contains {what} ({int(bad_mask.sum())} of {v.size} values)"
                           + (f"; {advice}." if advice else "."))


__all__ = ["Golden", "generate", "GOLDEN_ROOT"]
