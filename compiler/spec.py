"""Model specs: what to compile, what its inputs look like, where real inputs come from.

A SPEC on the command line is one of
- a model spec TOML (``models/<name>.toml``) — or just ``<name>`` when that file exists,
- a ``.onnx`` file (inputs read from the graph; golden vectors must be given),
- a ``.pt2`` ExportedProgram,
- ``package.module:factory`` returning ``(module, example_inputs)``.
All four become one `ModelSpec`.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from compiler.artifact.files import sha256_file
from compiler.datasets import parse_source
from compiler.datasets.factory import PythonSource
from compiler.datasets.npz import NpzSource
from compiler.datasets.samples import DataSource
from compiler.datasets.sentences import SentencesSource
from compiler.errors import BadInput
from compiler.tomlschema import Table, load_toml

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
DTYPES = ("float32", "float16", "bfloat16", "int64", "int32", "int8", "uint8", "bool")
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


class SourceKind(enum.Enum):
    FACTORY = "factory"  # package.module:factory -> nn.Module or (nn.Module, example inputs)
    MODULE = "module"  # an nn.Module handed to the Python API, with its example inputs
    ONNX = "onnx"
    PT2 = "pt2"


class OutputKind(enum.Enum):
    LOGITS = "logits"  # classifier scores: also gated on top-1 agreement
    EMBEDDING = "embedding"  # gated on cosine similarity
    TENSOR = "tensor"


class Exporter(enum.Enum):
    DYNAMO = "dynamo"
    LEGACY = "legacy"


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: str
    shape: tuple[int | str, ...]  # str = a named dynamic dim

    @property
    def dynamic_dims(self) -> dict[int, str]:
        return {i: d for i, d in enumerate(self.shape) if isinstance(d, str)}


@dataclass(frozen=True)
class OutputSpec:
    name: str
    kind: OutputKind = OutputKind.TENSOR


@dataclass(frozen=True)
class EvalSpec:
    """A labelled evaluation set: the task metric is reported (and gated) beside parity."""

    data: DataSource
    metric: str  # "top1"
    output: str


@dataclass(frozen=True)
class CalibSpec:
    """Where calibration data comes from (never the golden or evaluation samples)."""

    data: DataSource
    samples: int = 256
    batch_size: int = 16


MIN_VALIDATION_SAMPLES = 32


@dataclass(frozen=True)
class ValidationSpec:
    """Real inputs (never golden, calibration or held-out ones) that precision decisions are judged
    on: each int8 / fp16 candidate must meet the output tolerances on every group, against the
    float model. Groups: one per sequence length for a sentence source with `lengths`, else one.
    Golden stays the parity set; a gate that saw 6 golden samples at one length passed engines
    that failed on new inputs."""

    groups: tuple[tuple[str, DataSource], ...]


@dataclass(frozen=True)
class ExportSpec:
    exporter: Exporter = Exporter.DYNAMO
    opset: int | None = None


@dataclass(frozen=True)
class ModelSpec:
    name: str
    source: str  # factory ref or file path
    source_kind: SourceKind
    inputs: tuple[TensorSpec, ...] = ()  # empty: read from the graph / example inputs
    outputs: tuple[OutputSpec, ...] = ()
    golden: DataSource | None = None
    evaluation: EvalSpec | None = None
    calibration: CalibSpec | None = None
    validation: ValidationSpec | None = None
    export: ExportSpec = ExportSpec()
    path: Path | None = None  # the spec file, or the model file
    sha256: str = ""
    trust_pickle: bool = False  # --trust-pickle: a .pt2 may unpickle (run code) when loaded
    loaded: tuple | None = dataclasses.field(default=None, compare=False, repr=False)  # MODULE: (module, examples)
    # [precision] keep_float (or --keep-float): nodes int8 / fp16 keep in float from the start
    keep_float: tuple[str, ...] = ()

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.inputs)

    @property
    def batch_axes(self) -> tuple[tuple[str, int], ...]:
        return batch_axes(self.inputs)

    def output_kind(self, name: str) -> OutputKind:
        for o in self.outputs:
            if o.name == name:
                return o.kind
        return OutputKind.TENSOR


def batch_axes(inputs: tuple[TensorSpec, ...]) -> tuple[tuple[str, int], ...]:
    """(input, axis) for inputs whose batch axis is not 0. The batch dim is the one named
    "batch", else the first input's leading named dim; an input without it keeps axis 0.
    Recurrent state declared as ["layers", "batch", "hidden"] is then sliced on axis 1."""
    names = [d for t in inputs for d in t.shape if isinstance(d, str)]
    if not names:
        return ()
    batch = "batch" if "batch" in names else (inputs[0].shape[0] if inputs and isinstance(inputs[0].shape[0], str) else None)
    if batch is None:
        return ()
    return tuple((t.name, t.shape.index(batch)) for t in inputs if batch in t.shape and t.shape.index(batch) != 0)


def calib_from_cli(ref: str, axes: tuple[tuple[str, int], ...] = ()) -> CalibSpec:
    """``--calib``: an .npz of arrays keyed by input name, or ``package.module:factory``
    returning ``{input: array}`` (or an iterator of such batches)."""
    if ref.endswith(".npz"):
        if not Path(ref).is_file():
            raise BadInput(f"--calib {ref!r} does not exist.")
        return CalibSpec(NpzSource(path=Path(ref), batch_axes=axes))
    if ":" in ref:
        return CalibSpec(PythonSource(factory=ref, batch_axes=axes))
    raise BadInput(f"--calib {ref!r} must be an .npz file or package.module:factory.")


def from_module(module: object, example_inputs: object, name: str | None = None) -> ModelSpec:
    """A spec for an in-memory nn.Module (the Python API): it exports at `example_inputs`' shapes
    (a tensor or a tuple of tensors), which are also its golden inputs."""
    examples = tuple(example_inputs) if isinstance(example_inputs, (tuple, list)) else (example_inputs,)
    cls = type(module)
    name = name or re.sub(r"[^a-z0-9._-]+", "-", cls.__name__.lower()).strip("-") or "model"
    if not NAME_RE.match(name):
        raise BadInput(f"model name {name!r} must be lower-case letters, digits, '.', '_' or '-'.")
    source = f"{cls.__module__}.{cls.__qualname__} (in memory)"
    return ModelSpec(name=name, source=source, source_kind=SourceKind.MODULE,
                     sha256=hashlib.sha256(source.encode()).hexdigest(), loaded=(module, examples))


def portable_path(path: Path) -> str:
    """`path` relative to the project root when it lies inside it (the zoo's specs); else its file
    name: the manifest is inside the artifact's content hash, and the same model built from
    another directory or machine must give the same artifact (its content is in the sha256 beside)."""
    try:
        return path.resolve().relative_to(MODELS_DIR.parent).as_posix()
    except ValueError:
        return path.name


def resolve(arg: str) -> ModelSpec:
    """Turn a SPEC argument into a ModelSpec, or raise BadInput naming what is wrong."""
    try:
        return _resolve(arg)
    except OSError as e:  # e.g. ENAMETOOLONG from stat() on an absurd argument
        shown = arg if len(arg) <= 120 else arg[:100] + f"… ({len(arg)} characters)"
        raise BadInput(f"model {shown!r} cannot be used: {e.strerror or e}.") from None


def _resolve(arg: str) -> ModelSpec:
    path = Path(arg)
    if path.suffix == ".toml":
        return load_spec(path)
    if path.suffix in (".onnx", ".pt2"):
        if not path.is_file():
            raise BadInput(f"model file {arg!r} does not exist.")
        kind = SourceKind.ONNX if path.suffix == ".onnx" else SourceKind.PT2
        return ModelSpec(
            name=_name_from(path.stem), source=str(path), source_kind=kind, path=path,
            sha256=sha256_file(path),
        )
    if ":" in arg and not path.exists():
        module, _, attr = arg.partition(":")
        return ModelSpec(
            name=_name_from(attr if attr not in ("build", "factory", "model") else module.rsplit(".", 1)[-1]),
            source=arg, source_kind=SourceKind.FACTORY, sha256=hashlib.sha256(arg.encode()).hexdigest(),
        )
    if (MODELS_DIR / f"{arg}.toml").is_file():
        return load_spec(MODELS_DIR / f"{arg}.toml")
    known = sorted(p.stem for p in MODELS_DIR.glob("*.toml"))
    raise BadInput(
        f"model {arg!r} is not a spec TOML, .onnx, .pt2 or package.module:factory, and "
        f"models/{arg}.toml does not exist; bundled models: {', '.join(known)}."
    )


def load_spec(path: Path) -> ModelSpec:
    data = load_toml(path, "model spec")
    t = Table(data, str(path))
    base = path.parent
    name = t.req("name", str)
    if not NAME_RE.match(name):
        raise BadInput(f"{path}: name {name!r} must be lower-case letters, digits, '.', '_' or '-'.")
    t.opt("description", str, "")
    source = t.req("source", str)
    if source.endswith((".onnx", ".pt2")):
        kind = SourceKind.ONNX if source.endswith(".onnx") else SourceKind.PT2
        src_path = Path(source) if Path(source).is_absolute() else base / source
        if not src_path.is_file():
            raise BadInput(f"{path}: source {source!r} does not exist (looked at {str(src_path)!r}).")
        source = str(src_path)
    elif ":" in source:
        kind = SourceKind.FACTORY
    else:
        raise BadInput(f"{path}: source {source!r} must be 'package.module:factory', a .onnx or a .pt2 file.")

    inputs = tuple(_tensor(it) for it in t.subs("inputs", required=True))
    if not inputs:
        raise BadInput(f"{path}: [[inputs]] must list at least one input.")
    outputs = []
    for ot in t.subs("outputs"):
        outputs.append(OutputSpec(ot.req("name", str), OutputKind(ot.choice("kind", [k.value for k in OutputKind], "tensor"))))
        ot.done()
    input_names = tuple(i.name for i in inputs)
    axes = batch_axes(inputs)

    export = ExportSpec()
    if (et := t.sub("export")) is not None:
        export = ExportSpec(Exporter(et.choice("exporter", [e.value for e in Exporter], "dynamo")), et.opt("opset", int))
        et.done()

    golden = None
    if (gt := t.sub("golden")) is not None:
        golden = parse_source(gt, input_names, base, axes)
        gt.done()

    evaluation = None
    if (vt := t.sub("evaluation")) is not None:
        metric = vt.choice("metric", ["top1"], "top1")
        output = vt.opt("output", str, outputs[0].name if outputs else "")
        evaluation = EvalSpec(parse_source(vt, input_names, base, axes), metric, output)
        vt.done()

    validation = None
    if (vt := t.sub("validation")) is not None:
        lengths = vt.opt("lengths", list)
        src = parse_source(vt, input_names, base, axes)
        if lengths is not None:
            if not isinstance(src, SentencesSource) or not lengths or not all(isinstance(n, int) and n > 0 for n in lengths):
                raise BadInput(f"{vt.where}: 'lengths' (positive token counts) needs source = \"sentences\", got {lengths!r}.")
            groups = tuple((f"{n} tokens", dataclasses.replace(src, max_length=n, pad_to_max_length=True)) for n in lengths)
        else:
            groups = (("all", src),)
        validation = ValidationSpec(groups)
        vt.done()

    calibration = None
    if (ct := t.sub("calibration")) is not None:
        samples = ct.opt("samples", int, 256)
        batch = ct.opt("batch_size", int, 16)
        if samples < 1 or batch < 1:
            raise BadInput(f"{ct.where}: samples and batch_size must be ≥ 1 (got {samples}, {batch}).")
        calibration = CalibSpec(parse_source(ct, input_names, base, axes), samples, batch)
        ct.done()
    keep_float: tuple[str, ...] = ()
    if (pt := t.sub("precision")) is not None:
        names = pt.opt("keep_float", list, [])
        if not all(isinstance(n, str) and n for n in names):
            raise BadInput(f"{pt.where}: keep_float must be a list of ONNX node names, got {names!r}.")
        keep_float = tuple(names)
        pt.done()
    t.done()
    return ModelSpec(
        name=name, source=source, source_kind=kind, inputs=inputs, outputs=tuple(outputs),
        golden=golden, evaluation=evaluation, calibration=calibration, validation=validation, export=export, path=path,
        sha256=sha256_file(path), keep_float=keep_float,
    )


def _tensor(t: Table) -> TensorSpec:
    name = t.req("name", str)
    dtype = t.choice("dtype", DTYPES, "float32")
    shape = t.req("shape", list)
    for d in shape:
        if isinstance(d, bool) or not isinstance(d, (int, str)) or (isinstance(d, int) and d < 0):
            raise BadInput(f"{t.where}: shape entries must be sizes or dim names, got {d!r} in {shape}.")
    t.done()
    return TensorSpec(name, dtype, tuple(shape))


def _name_from(stem: str) -> str:
    name = re.sub(r"[^a-z0-9._-]+", "-", stem.lower()).strip("-")
    return name or "model"

