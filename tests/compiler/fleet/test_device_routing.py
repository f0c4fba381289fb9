"""Device steps run where the device is: a local two-node Ray cluster on 127.0.0.1 — a head, and a
worker that offers the `jetson-orin` resource. A jetson row's deferred engine build runs as a
task on that worker, and what that node lacks (TensorRT) is the recorded outcome, not hidden.
With no node offering the resource the row stays deferred, saying so. The test starts and stops
its own cluster and leaves no Ray process behind.

Ray 2.60 keeps every socket on 127.0.0.1 only in its single-machine mode
(`RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`, what `--ray local` uses), and that mode refuses a second
node. A multi-node cluster binds its servers to all interfaces and its runtime-env agent to the
detected address, whatever `--node-ip-address` says; so here both nodes are given 127.0.0.1 as
their address and the test checks that no Ray process connects to any host but this one."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.compiler.fleet import ray_processes
from tests.conftest import REPO

ray = pytest.importorskip("ray")

ENV = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
FLEET = '[[build]]\nmodel = "digits-cnn"\ntargets = ["jetson", "cpu"]\nprecisions = ["fp32"]\n'


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def cluster(tmp_path):
    assert ray_processes() == [], "a Ray instance is already running"
    env = {**os.environ, **ENV, "PYTHONPATH": str(REPO)}
    ray_bin = str(Path(sys.executable).parent / "ray")
    port = _free_port()
    address = f"127.0.0.1:{port}"
    common = ["--disable-usage-stats"]
    try:
        subprocess.run([ray_bin, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=1",
                        "--include-dashboard=false", *common], env=env, check=True, capture_output=True, timeout=120)
        subprocess.run([ray_bin, "start", f"--address={address}", "--node-ip-address=127.0.0.1", "--num-cpus=1",
                        '--resources={"jetson-orin": 1}', *common], env=env, check=True, capture_output=True, timeout=120)
        yield address, env
    finally:
        subprocess.run([ray_bin, "stop", "--force"], env=env, capture_output=True, timeout=120)
        assert ray_processes() == [], "Ray processes left behind"


def _connections_to_other_hosts(pids: set[str]) -> list[str]:
    """Established TCP connections of these processes whose peer is not an address of this machine."""
    own = {"127.0.0.1", "::1", *subprocess.run(["hostname", "-I"], capture_output=True, text=True).stdout.split()}
    out = subprocess.run(["ss", "-tnpH", "state", "established"], capture_output=True, text=True).stdout
    bad = []
    for ln in out.splitlines():
        if any(f"pid={p}," in ln for p in pids):
            peer = ln.split()[3].rsplit(":", 1)[0].strip("[]").removeprefix("::ffff:")
            if peer not in own:
                bad.append(ln)
    return bad


def test_the_device_step_runs_on_the_node_that_offers_the_device(cluster, tmp_path):
    address, env = cluster
    (tmp_path / "fleet.toml").write_text(FLEET)
    r = subprocess.run([sys.executable, "-m", "compiler", "matrix", str(tmp_path / "fleet.toml"), "--out", str(tmp_path / "m"),
                        "--ray", address, "--no-cache"], cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    assert _connections_to_other_hosts({ln.split()[0] for ln in ray_processes()}) == []
    ray.init(address=address, log_to_driver=False)
    try:
        worker = next(n["NodeID"] for n in ray.nodes() if n["Alive"] and n["Resources"].get("jetson-orin"))
    finally:
        ray.shutdown()
    manifest = json.loads((tmp_path / "m" / "jetson" / "digits-cnn" / "fp32" / "manifest.json").read_text())
    (step,) = manifest["device_steps"]
    assert step["node_id"] == worker and step["resource"] == "jetson-orin"
    assert step["outcome"] == "toolchain missing" and step["code"] == 3 and "TensorRT" in step["message"]
    assert [d["step"] for d in manifest["deferred"]] == ["engine-build", "engine-verify"]  # still to be done
    s = json.loads((tmp_path / "m" / "summary.json").read_text())
    jet = next(x for x in s["results"] if x["target"] == "jetson")
    assert jet["device_note"].endswith("toolchain missing")
    artifact = tmp_path / "m" / "jetson" / "digits-cnn" / "fp32"
    assert subprocess.run([sys.executable, "-m", "compiler", "verify", "--artifact", str(artifact)],
                          cwd=REPO, env=env, capture_output=True).returncode == 3  # sealed, and it cannot run here


def test_without_a_node_offering_the_device_the_row_stays_deferred(tmp_path):
    (tmp_path / "fleet.toml").write_text('[[build]]\nmodel = "digits-cnn"\ntargets = ["jetson"]\nprecisions = ["fp32"]\n')
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    r = subprocess.run([sys.executable, "-m", "compiler", "matrix", str(tmp_path / "fleet.toml"), "--out", str(tmp_path / "m"),
                        "--ray", "local", "--jobs", "1", "--no-cache"], cwd=REPO, env=env, capture_output=True, text=True,
                       timeout=900)
    assert r.returncode == 0, r.stderr
    s = json.loads((tmp_path / "m" / "summary.json").read_text())
    assert s["results"][0]["device_note"] == "deferred: no node offers jetson-orin"
    assert "deferred: no node offers jetson-orin" in (tmp_path / "m" / "summary.md").read_text()
    assert ray_processes() == []
