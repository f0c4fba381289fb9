"""`make bench-versus`: our artifacts against the flows a user runs by hand, in one run.

Per model, one interleaved timing run (every flow once per round in a shuffled order, each sample
a ≈ 5 ms block of back-to-back calls; 1 thread, batch 1 and 8) over: PyTorch eager; by hand on
the raw export — ONNX Runtime fp32, ORT static QDQ (its defaults: u8 activations, MinMax), ORT dynamic int8 per-channel, OpenVINO default (its own precision hint:
bf16 on AMX CPUs), OpenVINO f32, NNCF int8 (OpenVINO's own quantizer); and our built artifacts
through their own runners (so any overhead they add is measured). Accuracy is judged on a
held-out real set (``bench/heldout/<model>.toml``) that no build step reads, against eager fp32
on the same inputs: top-1 agreement for classifiers, min cosine for embeddings at each of several
sequence lengths. Results: ``<out>/versus-<model>.json`` and a table in ``<out>/versus.md``, with
every artifact of ours that a by-hand flow of the same runtime and precision class beats at equal
or better accuracy (and whether the gap is beyond the run's noise).

The by-hand flows use each tool's documented defaults and the model's own calibration data; they
are bench-only (NNCF is the ``bench`` extra). Never assert these numbers in tests.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx_ir as ir

from compiler import datasets, frontend
from compiler import spec as spec_mod
from compiler.bench import at_batch
from compiler.errors import BadInput
from compiler.imports import call_factory
from compiler.tomlschema import Table, load_toml
from compiler.verify import cosine

HELDOUT_DIR = Path(__file__).resolve().parent.parent / "bench" / "heldout"
# Ours: (target, precision) built per model. android's LiteRT runs here (XNNPACK), so it is measured too.
OURS = (("cpu", "fp32"), ("cpu", "int8"), ("intel", "fp32"), ("intel", "bf16"), ("intel", "fp16"), ("intel", "int8"),
        ("android", "int8"))


# ---------------------------------------------------------------- held-out data


@dataclass
class HeldOut:
    kind: str  # "classifier" | "embedding"
    # per evaluation group (e.g. "224px", "seq 16"): a list of feeds, one sample each (batch 1)
    groups: dict[str, list[dict[str, np.ndarray]]]
    timing: dict[str, np.ndarray]  # the feeds timing repeats to the batch size
    describe: str
    measure: str = ""  # what accuracy means for this kind of model


def load_heldout(spec: spec_mod.ModelSpec, path: Path) -> HeldOut:
    t = Table(load_toml(path, "held-out set"), str(path))
    names = spec.input_names
    if t.req("source", str) == "images":
        src = datasets.parse_source(t, names, path.parent)
        views = list(src.load().feeds[names[0]])
        feeds = [{names[0]: v[None]} for v in views]
        return HeldOut("classifier", {"views": feeds}, feeds[0], f"{len(views)} views of {len(src.files)} photos ({path.name})",
                       "top-1 agreement with eager fp32")
    if t.req("source", str) == "python":  # a factory's samples, one view each
        src = datasets.parse_source(t, names, path.parent)
        arrays = src.load().feeds
        count = len(arrays[names[0]])
        feeds = [{k: a[i : i + 1] for k, a in arrays.items()} for i in range(count)]
        return HeldOut("classifier", {"views": feeds}, feeds[0], f"{count} views from {t.req('factory', str)} ({path.name})",
                       "top-1 agreement with eager fp32")
    lengths = t.req("lengths", list)
    plain = {k: v for k, v in t.raw().items() if k != "lengths"}
    groups: dict[str, list[dict[str, np.ndarray]]] = {}
    timing: dict[str, np.ndarray] = {}
    for n in lengths:
        src = datasets.parse_source(Table({**plain, "max_length": int(n)}, str(path)), names, path.parent)
        tok = call_factory(src.tokenizer, "tokenizer factory")
        enc = tok(list(src.sentences), padding="max_length", truncation=True, max_length=int(n), return_tensors="np")
        arrays = {k: np.asarray(enc[k], np.int64) for k in names}
        groups[f"seq {n}"] = [{k: a[i : i + 1] for k, a in arrays.items()} for i in range(len(src.sentences))]
        longest = int(np.argmax(arrays[names[-1]].sum(axis=1))) if "attention_mask" in arrays else 0
        timing = {k: a[longest : longest + 1] for k, a in arrays.items()}  # the longest length (last), most real tokens
    count = len(plain["sentences"])
    return HeldOut("embedding", groups, timing, f"{count} sentences at {', '.join(map(str, lengths))} tokens ({path.name})",
                   "min cosine to eager fp32")


# ---------------------------------------------------------------- flows


@dataclass
class Flow:
    name: str
    group: str  # "eager" | "by hand" | "ours"
    run: Callable[[dict[str, np.ndarray]], list[np.ndarray]]
    detail: str = ""
    close: Callable[[], None] = field(default=lambda: None)
    runtime: str = ""  # whose engine runs it: ours are compared with the by-hand flows of the same runtime …
    precision: str = ""  # … and the same precision class (PRECISION_CLASS)


def _eager(spec: spec_mod.ModelSpec) -> Flow:
    import torch

    module, examples = frontend.load_torch(spec)
    names = frontend.input_names_of(module, examples, spec)

    def run(feeds):
        with torch.inference_mode():
            return [np.asarray(v) for v in frontend.run_eager(module, feeds, names, spec).values()]

    return Flow("PyTorch eager fp32", "eager", run, f"torch {torch.__version__}, 1 thread", runtime="torch", precision="fp32")


def _ort(path: Path, name: str, detail: str, precision: str) -> Flow:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = so.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    inputs = [i.name for i in sess.get_inputs()]
    return Flow(name, "by hand", lambda feeds: sess.run(None, {n: feeds[n] for n in inputs}), detail, runtime="onnxruntime", precision=precision)


def _openvino(model: Any, name: str, detail: str, hint: str | None = None, quantized: bool = False) -> Flow:
    import openvino as ov

    config = {"INFERENCE_NUM_THREADS": 1, "NUM_STREAMS": 1}
    if hint:
        config["INFERENCE_PRECISION_HINT"] = hint
    compiled = ov.Core().compile_model(model, "CPU", config)
    request = compiled.create_infer_request()
    outs = list(compiled.outputs)
    hint_now = compiled.get_property("INFERENCE_PRECISION_HINT")
    precision = hint_now.get_type_name() if hasattr(hint_now, "get_type_name") else str(hint_now)

    def run(feeds):
        request.infer(feeds, share_inputs=True)
        return [request.get_tensor(o).data.copy() for o in outs]

    return Flow(name, "by hand", run, f"{detail}; executes {precision}", runtime="openvino",
                precision="int8" if quantized else precision)


class _Reader:
    """onnxruntime.quantization's CalibrationDataReader over the model's calibration samples."""

    def __init__(self, samples: list[dict[str, np.ndarray]]):
        self.items = iter(samples)

    def get_next(self):
        return next(self.items, None)


def _calibration(spec: spec_mod.ModelSpec) -> list[dict[str, np.ndarray]]:
    if spec.calibration is None:
        raise BadInput(f"model {spec.name!r} has no [calibration] data; the by-hand int8 flows need it.")
    out = []
    for batch in spec.calibration.data.batches(1, spec.calibration.samples):
        out.append({k: np.ascontiguousarray(v) for k, v in batch.feeds.items()})
    return out


def by_hand_flows(spec: spec_mod.ModelSpec, raw: Path, work: Path, transformer: bool, log: Callable[[str], None]) -> list[Flow]:
    import openvino as ov
    from onnxruntime.quantization import QuantType, quantize_dynamic, quantize_static

    calib = _calibration(spec)
    flows = [_ort(raw, "ORT fp32 (raw export)", "onnxruntime, default graph optimizations", "fp32")]
    log("by hand: ORT static QDQ (defaults: QDQ, u8 activations, s8 weights, MinMax)")
    quantize_static(str(raw), str(work / "ort_static.onnx"), _Reader(calib))
    flows.append(_ort(work / "ort_static.onnx", "ORT static QDQ int8", f"quantize_static defaults, {len(calib)} calibration samples", "int8"))
    if transformer:
        log("by hand: ORT dynamic int8, per-channel")
        quantize_dynamic(str(raw), str(work / "ort_dynamic.onnx"), per_channel=True, weight_type=QuantType.QInt8)
        flows.append(_ort(work / "ort_dynamic.onnx", "ORT dynamic int8 per-channel", "quantize_dynamic(per_channel=True, QInt8)", "int8"))
    ov_model = ov.convert_model(str(raw))
    flows.append(_openvino(ov_model, "OpenVINO default", "compile_model defaults"))
    flows.append(_openvino(ov_model, "OpenVINO f32", "INFERENCE_PRECISION_HINT=f32", "f32"))
    try:
        import nncf
    except ImportError:
        log("NNCF is not installed (pip install -e '.[bench]'); its flow is skipped")
        return flows
    log("by hand: NNCF int8 (nncf.quantize defaults)")
    kw = {"model_type": nncf.ModelType.TRANSFORMER} if transformer else {}
    q = nncf.quantize(ov.convert_model(str(raw)), nncf.Dataset(calib), subset_size=len(calib), **kw)
    flows.append(_openvino(q, "NNCF int8", "nncf.quantize" + (" (TRANSFORMER)" if transformer else "") + f", {len(calib)} samples, compile defaults", quantized=True))
    return flows


def our_flows(model: str, out: Path, ours: tuple[tuple[str, str], ...], log: Callable[[str], None]
              ) -> tuple[list[Flow], list[str]]:
    """Our artifacts as flows, and a line for each one not measured: it did not build, or it
    failed its gate (a user would not deploy it, so it does not compete)."""
    from compiler.artifact.read import load_artifact
    from compiler.build import BuildOptions, run as build

    flows, not_measured = [], []
    for target, precision in ours:
        directory = out / f"{model}-{target}-{precision}"
        log(f"ours: build {model} --target {target} --precision {precision}")
        t0 = time.perf_counter()
        try:
            result = build(model, target, BuildOptions(precision=precision, out=directory))
        except Exception as e:  # noqa: BLE001 - reported in the table, the rest still measured
            not_measured.append(f"ours {target} {precision}: did not build: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
            log(f"  {not_measured[-1]}")
            continue
        if not result.passed:
            reasons = result.parity.failures() if result.parity is not None else []
            not_measured.append(f"ours {target} {precision}: failed its gate ({'; '.join(reasons) or 'see its report.md'})")
            log(f"  {not_measured[-1]}")
            continue
        seconds = time.perf_counter() - t0
        manifest, runner = load_artifact(directory, threads=1)
        names = list(runner.output_names) or None
        floats = (manifest.get("calibration") or {}).get("float_nodes")

        def run(feeds, runner=runner, names=names):
            res = runner.run(feeds)
            return [res[n] for n in (names or res)]

        flows.append(Flow(f"ours {target} {precision}", "ours", run,
                          f"{manifest['engine']['backend']}, built in {seconds:.0f} s" + (f", {len(floats)} nodes float" if floats else ""),
                          runner.close, manifest["engine"]["backend"], precision))
    return flows, not_measured


# ---------------------------------------------------------------- measuring


def accuracy(held: HeldOut, flow: Flow, reference: dict[str, list[list[np.ndarray]]]) -> dict[str, Any]:
    got = {g: [flow.run(f) for f in feeds] for g, feeds in held.groups.items()}
    if held.kind == "classifier":
        agree = total = 0
        for g in held.groups:
            for ref, out in zip(reference[g], got[g]):
                agree += int(np.argmax(ref[0]) == np.argmax(out[0]))
                total += 1
        return {"agree": agree, "total": total, "score": agree / total, "text": f"{agree}/{total}"}
    per = {g: min(cosine(ref[0], out[0]) for ref, out in zip(reference[g], got[g])) for g in held.groups}
    worst = min(per.values())
    return {"min_cosine": per, "score": worst, "text": f"{worst:.4f} (" + ", ".join(f"{g}: {c:.4f}" for g, c in per.items()) + ")"}


# A timing sample is a block of back-to-back calls of one flow lasting about this long: a 0.1 ms
# call timed alone measures the cache state the previous (other) flow left behind, and 20 such
# samples moved digits-cnn's p50 by ±15 % between runs; blocks keep the interleaving and give
# steady-state latency, what a caller that runs the model repeatedly sees.
BLOCK_MS = 5.0


def repeats_for(seconds_per_call: float, block_ms: float = BLOCK_MS) -> int:
    return max(1, min(1000, round(block_ms / 1e3 / max(seconds_per_call, 1e-7))))


def time_flows(flows: list[Flow], timing: dict[str, np.ndarray], batches: list[int], iters: int, warmup: int,
               block_ms: float = BLOCK_MS) -> dict[str, dict[int, dict[str, float]]]:
    """Per flow and batch: p25 / p50 / p75 ms of `iters` interleaved samples (flow order shuffled
    per round with a fixed seed, so no flow always follows the same one), and the calls per sample."""
    rng = np.random.default_rng(0)
    out: dict[str, dict[int, dict[str, float]]] = {f.name: {} for f in flows}
    for batch in batches:
        feeds = {k: at_batch(v, batch) for k, v in timing.items()}
        repeats = {}
        for f in flows:
            spent = []
            for _ in range(max(warmup, 1)):
                t = time.perf_counter()
                f.run(feeds)
                spent.append(time.perf_counter() - t)
            repeats[f.name] = repeats_for(float(np.median(spent)), block_ms)
        times: dict[str, list[float]] = {f.name: [] for f in flows}
        for _ in range(iters):
            for i in rng.permutation(len(flows)):
                f, k = flows[i], repeats[flows[i].name]
                t = time.perf_counter()
                for _ in range(k):
                    f.run(feeds)
                times[f.name].append((time.perf_counter() - t) / k)
        for name, ts in times.items():
            q25, q50, q75 = np.percentile(np.asarray(ts) * 1e3, [25, 50, 75])
            out[name][batch] = {"p25": float(q25), "p50": float(q50), "p75": float(q75), "calls_per_sample": repeats[name]}
    return out


# What a user asked for when choosing a flow: full float, a 16-bit float (OpenVINO's default
# executes bf16 on this CPU), or int8. An fp32 artifact is not a loss against an int8 flow that
# happens to keep a saturated metric (64/64 digits): `--precision best` is where precisions compete.
PRECISION_CLASS = {"fp32": "fp32", "f32": "fp32", "bf16": "16-bit float", "fp16": "16-bit float", "f16": "16-bit float",
                   "int8": "int8"}


def dominated(rows: list[dict[str, Any]], batches: list[int]) -> list[dict[str, Any]]:
    """Each (ours, by-hand flow of the same runtime and precision class, batch) where the by-hand
    flow is at least as accurate and has the lower p50: acceptance 3 of issue 10 counts these.
    `separated` says whether the two interquartile ranges are apart (ours p25 above theirs p75),
    i.e. beyond this run's noise."""
    def cls(r):
        return PRECISION_CLASS.get(r["precision"], r["precision"])

    out = []
    for o in (r for r in rows if r["group"] == "ours"):
        for h in (r for r in rows if r["group"] == "by hand" and r["runtime"] == o["runtime"] and cls(r) == cls(o)):
            if h["accuracy"]["score"] < o["accuracy"]["score"]:
                continue
            for b in map(str, batches):
                if h["p50_ms"][b] < o["p50_ms"][b]:
                    out.append({"ours": o["flow"], "by_hand": h["flow"], "batch": int(b), "ours_ms": o["p50_ms"][b],
                                "by_hand_ms": h["p50_ms"][b], "slower": o["p50_ms"][b] / h["p50_ms"][b] - 1,
                                "separated": o["quartiles_ms"][b][0] > h["quartiles_ms"][b][1],
                                "ours_accuracy": o["accuracy"]["text"], "by_hand_accuracy": h["accuracy"]["text"]})
    return out


def verdict(rows: list[dict[str, Any]], batches: list[int], bar: float, margin: float = 1.15) -> list[str]:
    lines = []
    for b in batches:
        hand = [r for r in rows if r["group"] == "by hand" and r["accuracy"]["score"] >= bar]
        ours = [r for r in rows if r["group"] == "ours" and r["accuracy"]["score"] >= bar]
        if not hand or not ours:
            lines.append(f"batch {b}: {'no by-hand flow' if not hand else 'none of ours'} keeps the accuracy bar ({bar}).")
            continue
        h = min(hand, key=lambda r: r["p50_ms"][str(b)])
        o = min(ours, key=lambda r: r["p50_ms"][str(b)])
        ratio = h["p50_ms"][str(b)] / o["p50_ms"][str(b)]
        lines.append(f"batch {b}: fastest by hand at the bar: {h['flow']} {h['p50_ms'][str(b)]:.2f} ms; ours: {o['flow']} "
                     f"{o['p50_ms'][str(b)]:.2f} ms → **{ratio:.2f}×** ({'meets' if ratio >= margin else 'misses'} the {margin}× target)")
    return lines


def run(model: str, out: Path, batches: list[int], iters: int, warmup: int, ours: tuple[tuple[str, str], ...] = OURS,
        log: Callable[[str], None] = print) -> dict[str, Any]:
    import torch

    torch.set_num_threads(1)
    spec = spec_mod.resolve(model)
    held = load_heldout(spec, HELDOUT_DIR / f"{spec.name}.toml")
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="versus-") as tmp:
        work = Path(tmp)
        log(f"{spec.name}: held-out {held.describe}")
        golden = spec.golden.load().feeds if spec.golden is not None else None
        fe = frontend.load(spec, golden, log=lambda s: None)
        raw = work / "raw.onnx"
        ir.save(fe.model, raw)
        transformer = sum(n.op_type in ("MatMul", "Gemm") for n in fe.model.graph) > sum(n.op_type == "Conv" for n in fe.model.graph)
        ours_measured, not_measured = our_flows(spec.name, out, ours, log)
        flows = [_eager(spec), *by_hand_flows(spec, raw, work, transformer, log), *ours_measured]
        eager = flows[0]
        reference = {g: [eager.run(f) for f in feeds] for g, feeds in held.groups.items()}
        log("accuracy on the held-out set …")
        acc = {f.name: accuracy(held, f, reference) for f in flows}
        log(f"timing {len(flows)} flows, interleaved, batches {batches}, {iters} iterations …")
        timed = time_flows(flows, held.timing, batches, iters, warmup)
        for f in flows:
            f.close()
    rows = []
    for f in flows:
        t = timed[f.name]
        rows.append({
            "flow": f.name, "group": f.group, "runtime": f.runtime, "precision": f.precision, "detail": f.detail,
            "p50_ms": {str(b): t[b]["p50"] for b in batches},
            "quartiles_ms": {str(b): [t[b]["p25"], t[b]["p75"]] for b in batches},
            "calls_per_sample": {str(b): t[b]["calls_per_sample"] for b in batches},
            "x_eager": {str(b): timed[eager.name][b]["p50"] / t[b]["p50"] for b in batches},
            "accuracy": acc[f.name],
        })
    bar = 0.9 if held.kind == "classifier" else 0.99
    result = {"model": spec.name, "heldout": held.describe, "accuracy_measure": held.measure, "accuracy_bar": bar,
              "batches": batches, "iters": iters, "warmup": warmup, "threads": 1, "rows": rows,
              "verdict": verdict(rows, batches, bar), "dominated": dominated(rows, batches), "not_measured": not_measured}
    (out / f"versus-{spec.name}.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def markdown(results: list[dict[str, Any]]) -> str:
    parts = ["# Ours vs the runtimes' own flows (`make bench-versus`)", "",
             "One interleaved run per model, 1 thread, p50 ms over blocks of back-to-back calls (≈ 5 ms each); "
             "×eager = eager p50 / flow p50 in the same run. "
             "Accuracy on held-out real inputs no build step saw, against eager fp32.", ""]
    for r in results:
        b = r["batches"]
        parts += [f"## {r['model']}", "", f"Held-out: {r['heldout']}; accuracy = {r['accuracy_measure']} (bar {r['accuracy_bar']}).", "",
                  "| flow | " + " | ".join(f"b{x} ms" for x in b) + " | ×eager " + " / ".join(f"b{x}" for x in b) + " | accuracy | how |",
                  "|---|" + "---|" * len(b) + "---|---|---|"]
        for row in r["rows"]:
            parts.append(f"| {row['flow']} | " + " | ".join(f"{row['p50_ms'][str(x)]:.2f}" for x in b) + " | "
                         + " / ".join(f"{row['x_eager'][str(x)]:.2f}" for x in b) + f" | {row['accuracy']['text']} | {row['detail']} |")
        if r.get("not_measured"):
            parts += ["", "Not measured: " + "; ".join(r["not_measured"])]
        parts += ["", *[f"- {line}" for line in r["verdict"]], ""]
        losses = r.get("dominated", [])
        parts.append("Ours slower than a by-hand flow of the same runtime and precision class that is at least as accurate: "
                     + ("none." if not losses else f"{len(losses)}."))
        for d in losses:
            parts.append(f"- {d['ours']} b{d['batch']}: {d['ours_ms']:.3f} ms vs {d['by_hand']} {d['by_hand_ms']:.3f} ms "
                         f"({d['slower']:+.1%}; {'beyond' if d['separated'] else 'within'} this run's noise: interquartile ranges "
                         f"{'apart' if d['separated'] else 'overlap'}); accuracy {d['ours_accuracy']} vs {d['by_hand_accuracy']}")
        parts.append("")
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m compiler.versus", description=__doc__.splitlines()[0])
    p.add_argument("--model", action="append", required=True)
    p.add_argument("--batch", type=int, action="append")
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--out", type=Path, default=Path("build/bench"))
    p.add_argument("--ours", action="append", metavar="TARGET:PRECISION",
                   help="our artifacts to build and measure (default: " + " ".join(f"{t}:{q}" for t, q in OURS) + ")")
    a = p.parse_args(argv)
    ours = tuple(tuple(x.split(":", 1)) for x in a.ours) if a.ours else OURS
    results = [run(m, a.out, a.batch or [1, 8], a.iters, a.warmup, ours) for m in a.model]
    text = markdown(results)
    (a.out / "versus.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
