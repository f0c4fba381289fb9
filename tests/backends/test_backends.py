"""Every registered backend, on every profile that uses it: compile a real small model, run it,
compare with the ONNX reference evaluator (an implementation independent of every runtime).

Adding a backend to the registry (and a profile for it) adds its cases here. Cases whose
toolchain cannot run on this host are skipped with the reason `available()` gives.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnx.reference
import pytest

from compiler import onnx_file
from compiler.profile import known_profiles, load_profile
from targets import BACKENDS, get_backend

CASES = [(p, load_profile(p).backend) for p in known_profiles() if load_profile(p).backend in BACKENDS]


def test_every_backend_has_a_profile():
    assert set(BACKENDS) <= {b for _, b in CASES}


@pytest.fixture(params=CASES, ids=[f"{p}-{b}" for p, b in CASES])
def profile(request):
    prof = load_profile(request.param[0])
    avail = get_backend(prof.backend).available(prof)
    if not avail.can_compile:
        pytest.skip(f"{prof.backend} cannot compile here: {avail.reason}")
    return prof


def test_compile_run_matches_reference_evaluator(profile, tiny_onnx, tmp_path):
    path, golden = tiny_onnx
    model = onnx_file.load_onnx(path)
    backend = get_backend(profile.backend)
    work = tmp_path / "engine"
    work.mkdir()
    import shutil

    shutil.copy(path, work / "model.onnx")
    # a float model: int8-by-default targets (android) are compiled at fp32 here; int8 needs a
    # calibrated QDQ model (tests/models)
    precision = "fp32" if "fp32" in profile.precisions else profile.default_precision
    engine = backend.compile(model, work / "model.onnx", profile, precision, work)
    for f in engine.files:
        assert (work / f).is_file(), f"{profile.backend} said it wrote {f}"
    avail = backend.available(profile)
    if not avail.can_run:
        pytest.skip(f"{profile.backend} cannot run here: {avail.reason}")
    x = np.random.default_rng(3).standard_normal((4, 3, 6, 6)).astype(np.float32)
    (expected,) = onnx.reference.ReferenceEvaluator(onnx.load(str(path))).run(None, {"x": x})
    with backend.load(engine) as runner:
        got = runner.run({"x": x})
    assert set(got) == {"y"}
    np.testing.assert_allclose(got["y"], expected, atol=1e-5, rtol=1e-4)


def test_duplicate_registration_is_loud():
    from targets.registry import register

    cls = next(iter(BACKENDS.values()))
    with pytest.raises(RuntimeError, match="registered twice"):
        register(cls)


def test_unknown_backend_lists_known():
    from compiler.errors import BadInput

    with pytest.raises(BadInput, match="onnxruntime"):
        get_backend("onnxruntim")
