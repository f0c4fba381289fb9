"""TVM backend (targets ``rpi`` and ``tvm-x86``): Relax ONNX frontend → ``tvm.compile`` for the
profile's target → ``model.so`` with the weights embedded (``keep_params_in_input=False``).

When the profile's target is another architecture (rpi: aarch64), the library is
cross-compiled with the profile's ``cross_compiler`` and cannot run here; the same Relax module
is then also built for this host (``model.host.so``) and that build is what the build verifies.
The manifest records that the device library was built from the verified IR and the command
that verifies it on the device (``compiler verify --on-device``).

Auto-tuning (MetaSchedule) is not offered: with the apache-tvm 0.27 wheel every candidate fails
in the LocalBuilder, or the FFI segfaults (docs/toolchains.md).
"""

from __future__ import annotations

import platform
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnx_ir as ir

from compiler import interrupts
from compiler import ir as irh
from compiler.errors import ToolchainMissing, ToolchainRefused, mentioned_ops
from compiler.options import Option
from compiler.profile import TargetProfile
from targets.base import Availability, Backend, Deferred, Engine, Runner
from targets.native_stderr import quiet_native_stderr
from targets.registry import register

DEVICE_LIB, HOST_LIB = "model.so", "model.host.so"
_ARCH = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}


def _target_spec(profile: TargetProfile) -> dict:
    return dict(profile.option("target", {"kind": "llvm"}))


def _target_arch(profile: TargetProfile) -> str:
    triple = _target_spec(profile).get("mtriple", "")
    return _ARCH.get(triple.split("-")[0], triple.split("-")[0]) if triple else _host_arch()


def _host_arch() -> str:
    return _ARCH.get(platform.machine().lower(), platform.machine().lower())


@register
class TvmBackend(Backend):
    name = "tvm"
    options = {
        "target": Option(dict, {"kind": "llvm"}, "TVM target in dict form (kind, mtriple, mattr…)",
                         check=lambda t: None if isinstance(t.get("kind"), str) else "needs a string 'kind'"),
        "cross_compiler": Option(str, "", "C compiler that links the library for the device (empty: this host's)"),
    }
    accepts = frozenset({"LayerNormalization", "Gelu"})  # the Relax ONNX frontend's standard ops only

    def available(self, profile: TargetProfile) -> Availability:
        try:
            import tvm
        except ImportError as e:
            return Availability(False, False, f"apache-tvm is not installed ({e}); pip install model-compiler[tvm]")
        versions = {"apache-tvm": tvm.__version__}
        arch = _target_arch(profile)
        if arch != _host_arch():
            cc = profile.option("cross_compiler", "")
            if not cc or shutil.which(cc) is None:
                return Availability(
                    False, False,
                    f"cross compiler {cc or '(none named)'} for {arch} not found; install Debian's "
                    f"gcc-{arch}-linux-gnu (`make setup` does where it can)", versions,
                )
            return Availability(True, True, f"tvm {tvm.__version__}; {arch} library cross-compiled with {cc}, "
                                f"verified through a {_host_arch()} build of the same IR", versions)
        return Availability(True, True, f"tvm {tvm.__version__} ({arch})", versions)

    def compile(self, model: ir.Model, model_path: Path, profile: TargetProfile, precision: str, workdir: Path) -> Engine:
        import tvm
        from tvm.relax.frontend.onnx import from_onnx

        proto = onnx.load(str(model_path))
        _refuse_known_wrong(proto, tvm.__version__)
        try:
            with quiet_native_stderr():
                mod = from_onnx(proto, keep_params_in_input=False)
        except Exception as e:  # noqa: BLE001 - TVM raises InternalError/TVMError/ValueError/KeyError…
            interrupts.check()
            text = str(e)
            first = next((ln for ln in text.splitlines() if "Check failed" in ln or "Error" in ln or "not supported" in ln),
                         text.splitlines()[0] if text else type(e).__name__)
            ops = mentioned_ops(text, (n.op_type for n in proto.graph.node))
            raise ToolchainRefused(
                f"TVM {tvm.__version__}'s Relax ONNX frontend cannot import {model_path.name}"
                + (f" (op {', '.join(ops)})" if ops else "") + f": {type(e).__name__}: {first.strip()[:300]}"
            ) from None
        spec = _target_spec(profile)
        arch = _target_arch(profile)
        info = {
            "target": spec, "arch": arch, "inputs": [t.name for t in irh.graph_inputs(model)],
            "outputs": [t.name for t in irh.graph_outputs(model)], "apache-tvm": tvm.__version__,
        }
        exe = tvm.compile(mod, target=tvm.target.Target(spec))
        deferred: list[Deferred] = []
        if arch == _host_arch():
            exe.export_library(str(workdir / DEVICE_LIB))
            return Engine(self.name, precision, workdir, DEVICE_LIB, [DEVICE_LIB], info)
        from tvm.support import cc

        compiler = profile.option("cross_compiler")
        exe.export_library(str(workdir / DEVICE_LIB), fcompile=cc.cross_compiler(compiler))
        host = tvm.compile(mod, target=tvm.target.Target({"kind": "llvm"}))
        host.export_library(str(workdir / HOST_LIB))
        info.update(device_entry=DEVICE_LIB, cross_compiler=compiler,
                    host_verification=f"{HOST_LIB}: the same Relax module built for {_host_arch()}")
        deferred.append(Deferred(
            "verify-on-device",
            f"{DEVICE_LIB} is an {arch} library and this host is {_host_arch()}; it was built from the IR "
            f"that {HOST_LIB} verified here",
            "python -m compiler verify --artifact {artifact} --on-device",
        ))
        return Engine(self.name, precision, workdir, HOST_LIB, [DEVICE_LIB, HOST_LIB], info, deferred)

    def load(self, engine: Engine, threads: int = 1) -> Runner:
        if engine.entry == engine.info.get("device_entry") and engine.info.get("arch") != _host_arch():
            raise ToolchainMissing(
                f"{engine.dir / engine.entry} is an {engine.info['arch']} library; this host is {_host_arch()}. "
                "Run `verify --on-device` on the device (with apache-tvm installed there)."
            )
        return TvmRunner(engine.dir / engine.entry, engine.info["inputs"], engine.info["outputs"])


class TvmRunner(Runner):
    def __init__(self, path: Path, inputs: list[str], outputs: list[str]):
        import tvm
        from tvm import relax

        self.vm = relax.VirtualMachine(tvm.runtime.load_module(str(path)), tvm.cpu())
        self.input_names, self.output_names = tuple(inputs), tuple(outputs)

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import tvm

        # np.array, not ascontiguousarray: the latter turns a 0-d (scalar) input into 1-d
        out = self.vm["main"](*(tvm.runtime.tensor(np.array(feeds[n], order="C")) for n in self.input_names))
        outs = [out] if hasattr(out, "numpy") else list(out)
        return {n: o.numpy() for n, o in zip(self.output_names, outs)}


def _refuse_known_wrong(proto: onnx.ModelProto, version: str) -> None:
    """What the Relax ONNX frontend imports but computes wrongly, refused before it runs:
    LayerNormalization's optional Mean / InvStdDev come back with shape () instead of the
    input's shape with 1 on the normalized axes (seen on ONNX's node cases; parity caught it)."""
    used = {i for n in proto.graph.node for i in n.input} | {o.name for o in proto.graph.output}
    for n in proto.graph.node:
        if n.op_type == "LayerNormalization" and any(o and o in used for o in n.output[1:]):
            raise ToolchainRefused(f"TVM {version}'s Relax ONNX frontend returns LayerNormalization node {n.name!r}'s "
                                   "Mean / InvStdDev with the wrong shape (() instead of the reduced input shape); "
                                   "this model reads them, so it is refused rather than built wrong.")

