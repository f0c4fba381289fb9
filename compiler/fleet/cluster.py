"""The Ray executor: each row is a Ray task (one CPU, bounded retries) on whichever node has room;
a deferred device step is a task on a node that offers the device's custom resource.

`--ray local` starts a Ray instance on this machine with every socket on 127.0.0.1: Ray binds
its servers to the node IP it detects (this machine's eth0 address, even with
`node_ip_address="127.0.0.1"`) unless it believes it is a single-machine install, which
``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` makes it (its loopback-only mode for laptops); token
authentication (on by default in Ray 2.60) is turned off for that local instance only.
`--ray ADDRESS` joins an existing cluster as it is configured.

A task builds into its node's scratch and returns the artifact as bytes through the object store;
the driver installs it under the same atomic rules as `build` (`compiler.fleet.install`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from compiler.errors import BadInput, ToolchainMissing
from compiler.fleet import install
from compiler.fleet.row import build_row_packed, device_step
from compiler.fleet.spec import Row

LOCAL_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
MAX_RETRIES = 2
WORKER_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "TVM_NUM_THREADS": "1", "ORT_DISABLE_TELEMETRY": "1",
              "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def connect(address: str, jobs: int) -> Any:
    """`local`: a Ray instance on 127.0.0.1 with `jobs` CPUs; else the cluster at ADDRESS."""
    if address == "local":
        os.environ.update(LOCAL_ENV)  # read when ray is imported and by the processes it starts
    try:
        import ray
    except ImportError as e:
        raise ToolchainMissing(f"--ray needs the ray package ({e}); `make setup` installs it.") from None
    env = {"env_vars": {**WORKER_ENV, "PYTHONPATH": os.pathsep.join(filter(None, [str(Path.cwd()), os.environ.get("PYTHONPATH")]))}}
    try:
        if address == "local":
            ray.init(num_cpus=jobs, include_dashboard=False, log_to_driver=False, runtime_env=env,
                     _node_ip_address="127.0.0.1", configure_logging=False)
        else:
            ray.init(address=address, log_to_driver=False, runtime_env=env, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise BadInput(f"--ray {address}: cannot start or join a Ray cluster: {e}") from None
    return ray


def run(ray: Any, rows: list[Row], root: Path, cache_dir: str | None, use_cache: bool,
        on_start: Callable[[Row], None], on_done: Callable[[Row, dict[str, Any]], None]) -> None:
    task = ray.remote(num_cpus=1, max_retries=MAX_RETRIES, retry_exceptions=False)(build_row_packed)
    refs = {}
    try:
        for row in rows:
            refs[task.remote(row, cache_dir, use_cache)] = row
            on_start(row)
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            row = refs[done[0]]
            try:
                rec, data = ray.get(done[0])
            except Exception as e:  # noqa: BLE001 - a worker lost beyond its retries, a task error
                on_done(row, {"id": row.id, "code": 4, "status": "error", "seconds": None,
                              "message": f"the Ray task failed after {MAX_RETRIES} retries: {type(e).__name__}: {e}"})
                continue
            if data is not None:
                rec["out"] = str(install.install_packed(data, row.out(root), failed=rec.get("status") == "failed"))
            on_done(row, rec)
    except BaseException:
        for ref in refs:
            ray.cancel(ref, force=True)
        raise


def offers(ray: Any, resource: str) -> bool:
    return ray.cluster_resources().get(resource, 0) >= 1


def run_device_step(ray: Any, artifact: Path, target: str, resource: str) -> dict[str, Any]:
    """The artifact's deferred steps on a node that offers `resource`; the outcome (passed,
    failed, toolchain missing there) is recorded in the manifest either way."""
    from compiler.fleet.row import pack

    task = ray.remote(num_cpus=1, resources={resource: 1}, max_retries=MAX_RETRIES)(device_step)
    rec, data = ray.get(task.remote(pack(artifact), target, resource))
    if data is not None:
        install.install_packed(data, artifact, failed=rec["code"] != 0)
    install.record_device_step(artifact, rec)
    return rec


def shutdown(ray: Any, address: str) -> None:
    ray.shutdown()
