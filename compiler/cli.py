"""Command line: build · golden · verify · bench · targets (docs/cli.md).

Exit codes: 0 built and verified · 1 parity failure (artifact kept, marked failed) · 2 bad input
or usage (nothing written) · 3 target toolchain missing on this host · 4 internal error (a bug) ·
5 the host ran out of disk space or memory (nothing installed).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import sys
import threading
import traceback
from pathlib import Path

from compiler import interrupts
from compiler.artifact.scratch import private_tmp
from compiler.errors import BadInput, CompilerError, ParityFailure, resource_error
from compiler.progress import Progress

INTERNAL_ERROR = 4


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="model-compiler", description="Compile a model for a target and verify it against golden vectors.")
    sub = p.add_subparsers(dest="command", required=True)

    b = sub.add_parser("build", help="export, optimize, compile and verify a model for a target")
    b.add_argument("--model", help="models/<name>.toml, <name>, a .onnx, a .pt2, or package.module:factory")
    b.add_argument("--from-artifact", type=Path, metavar="DIR",
                   help="finish a build whose engine step was deferred (e.g. TensorRT, on the device)")
    b.add_argument("--target", required=True, help="a profile in targets/profiles (see `targets`)")
    b.add_argument("--precision", help="fp32|fp16|bf16|int8, or best: the fastest that passes (default: the target's)")
    b.add_argument("--out", type=Path, help="artifact directory (default build/<target>/<model>)")
    b.add_argument("--golden", type=Path, help="golden directory (default golden/<model>)")
    b.add_argument("--pipeline", help="pass pipeline (default: the target profile's; see `passes`)")
    b.add_argument("--exporter", choices=["dynamo", "legacy"], help="override the spec's exporter")
    b.add_argument("--verify-passes", action="store_true",
                   help="run the golden inputs through ONNX Runtime after every pass; stop at the first that breaks tolerance")
    b.add_argument("--dump-ir", type=Path, metavar="DIR", help="write the model after each pass as DIR/NNN_<pass>.onnx")
    b.add_argument("--calibrator", choices=["minmax", "percentile", "entropy", "mse"],
                   help="int8 range method (default: the target preset's)")
    b.add_argument("--calib", metavar="DATA", help="calibration data: an .npz keyed by input name, or "
                   "package.module:factory returning {input: array} (replaces the spec's [calibration])")
    b.add_argument("--calib-samples", type=int, metavar="N", help="calibration samples (default: the spec's)")
    b.add_argument("--trust-pickle", action="store_true",
                   help="allow a .pt2 whose weights/inputs are pickled (loading it runs code from the file)")
    b.add_argument("--keep-float", metavar="NODE,NODE", help="ONNX nodes int8/fp16 keep in float (e.g. from `debug --bisect`)")
    b.add_argument("--no-fallback", action="store_true",
                   help="build the precision asked for without returning nodes to float (to investigate a failure)")
    b.add_argument("--localize-seconds", type=float, default=300.0, metavar="S",
                   help="a failed build names its first divergent layer within S seconds (default 300; 0: do not)")
    b.add_argument("--cache", type=Path, metavar="DIR",
                   help="stage cache directory (default: $MODEL_COMPILER_CACHE, else $XDG_CACHE_HOME/model-compiler, "
                        "else ~/.cache/model-compiler)")
    b.add_argument("--no-cache", action="store_true", help="reuse no stage result from disk and store none")
    b.add_argument("--quiet", action="store_true")

    g = sub.add_parser("golden", help="write golden vectors from PyTorch eager fp32 on real inputs")
    g.add_argument("--model", required=True)
    g.add_argument("--out", type=Path, help="default golden/<model>")
    g.add_argument("--inputs", type=Path, help="an .npz of inputs keyed by input name (default: the spec's [golden] source)")
    g.add_argument("--trust-pickle", action="store_true", help="as for build")

    v = sub.add_parser("verify", help="run a built artifact on golden inputs and compare")
    v.add_argument("--artifact", type=Path, required=True)
    v.add_argument("--golden", type=Path)
    v.add_argument("--on-device", action="store_true",
                   help="load the device build (e.g. the cross-compiled aarch64 library) rather than this host's twin")

    be = sub.add_parser("bench", help="latency of built artifacts (JSON on stdout, a table on stderr)")
    be.add_argument("--artifact", type=Path, required=True, action="append",
                    help="repeat to compare artifacts in one interleaved run (ratios vs the first)")
    be.add_argument("--batch", type=int, action="append", help="repeatable (default 1)")
    be.add_argument("--iters", type=int, default=50)
    be.add_argument("--warmup", type=int, default=5)
    be.add_argument("--threads", type=int, default=1)
    be.add_argument("--json", type=Path, help="also write the result to this file")
    be.add_argument("--html", action="store_true",
                    help="draw the latencies (p50/p95/p99 per batch) into each artifact's report.html")

    m = sub.add_parser("matrix", help="build and verify every (model, target, precision) of a fleet file, in parallel")
    m.add_argument("fleet", type=Path, help="FLEET.toml: [[build]] tables with model, targets, precisions")
    m.add_argument("--out", type=Path, required=True, help="artifacts go to DIR/<target>/<model>/<precision>/")
    m.add_argument("--jobs", type=int, help="rows built at once here (default: this machine's cores)")
    m.add_argument("--ray", metavar="local|ADDRESS", help="run rows as Ray tasks: 'local' starts Ray on 127.0.0.1")
    m.add_argument("--junit", type=Path, metavar="FILE", help="also write JUnit XML (a suite per target)")
    m.add_argument("--cache", type=Path, metavar="DIR", help="the stage cache every row shares (as for build)")
    m.add_argument("--no-cache", action="store_true")
    m.add_argument("--quiet", action="store_true")

    d = sub.add_parser("debug", help="name the layer where an artifact's engine departs from its float reference")
    d.add_argument("--artifact", type=Path, required=True)
    d.add_argument("--out", type=Path, help="where debug.json and report.html go (default: DIR.debug)")
    d.add_argument("--bisect", action="store_true", help="int8/fp16: the smallest keep-float list that passes (real engine runs)")
    d.add_argument("--quiet", action="store_true")

    t = sub.add_parser("targets", help="every target: can it compile here? run here? why not?")
    t.add_argument("--ops", metavar="TARGET", help="the ONNX ops this target's lowering converts")
    sub.add_parser("passes", help="every graph pass with a one-line description, and the pipelines")
    return p


def main(argv: list[str] | None = None, program: bool = False) -> int:
    """`program`: called by `python -m compiler`, which exits with the result (the signal
    handlers stay, so a signal between here and the exit cannot kill a finished run)."""
    args = _parser().parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    os.environ.setdefault("TVM_NUM_THREADS", "1")
    previous = interrupts.install() if threading.current_thread() is threading.main_thread() else {}
    # build and golden hold an output slot, whose scratch (beside the output) takes every temp file
    scratch, entered = (private_tmp() if args.command not in ("build", "golden") else contextlib.nullcontext()), False
    try:
        scratch.__enter__()
        entered = True
        code = _run(args)
        if interrupts.late():
            print(f"{interrupts.name()} arrived after the output was installed; it is complete and stays.", file=sys.stderr)
        return code
    except KeyboardInterrupt:
        return _interrupted()
    except CompilerError as e:
        if interrupts.pending():  # a signal that library code turned into another error
            return _interrupted()
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except Exception as e:  # noqa: BLE001 - last resort: a bug, not a user error
        if interrupts.pending():
            return _interrupted()
        full = resource_error(e)
        if full is not None:  # disk full, out of memory: the host's limit, not a bug
            print(f"error: {full}", file=sys.stderr)
            return full.exit_code
        traceback.print_exc()
        print("error: internal error (a bug in model-compiler); the traceback is above.", file=sys.stderr)
        return INTERNAL_ERROR
    finally:
        if entered:
            scratch.__exit__(None, None, None)
        if program:
            interrupts.finish()
        else:
            interrupts.restore(previous)  # main() called from Python leaves the caller's handlers as they were


def program() -> int:
    """The `model-compiler` command and `python -m compiler`."""
    return main(program=True)


def _interrupted() -> int:
    print(f"interrupted ({interrupts.name()}): nothing was installed; the previous output is untouched.", file=sys.stderr)
    return interrupts.exit_code()


def _run(args: argparse.Namespace) -> int:
    if args.command == "build":
        from compiler import build

        if (args.model is None) == (args.from_artifact is None):
            raise BadInput("build needs exactly one of --model SPEC or --from-artifact DIR.")
        if args.from_artifact is not None:
            from compiler.build.from_artifact import build_from_artifact

            r = build_from_artifact(args.from_artifact, args.target, Progress(quiet=args.quiet))
            if not r.passed:
                raise ParityFailure(f"engine parity failed in {r.out_dir}: {'; '.join(r.parity.failures())}.")
            return 0
        opts = build.BuildOptions(
            precision=args.precision, out=args.out, golden_dir=args.golden, pipeline=args.pipeline,
            exporter=args.exporter, verify_passes=args.verify_passes, dump_ir=args.dump_ir,
            calibrator=args.calibrator, calib_samples=args.calib_samples, trust_pickle=args.trust_pickle, calib=args.calib,
            cache_dir=args.cache, use_cache=not args.no_cache,
            keep_float=tuple(n for n in (args.keep_float or "").split(",") if n), fallback=not args.no_fallback,
            localize_seconds=args.localize_seconds,
        )
        r = build.run(args.model, args.target, opts, Progress(quiet=args.quiet))
        if not r.passed and r.failure is not None:
            raise ParityFailure(f"{r.failure}. The artifact is kept, marked failed, in {r.out_dir}/ (see report.md).")
        if not r.passed:
            raise ParityFailure(
                f"parity failed for {r.manifest['model']['name']} on {r.manifest['target']['name']} "
                f"({r.manifest['precision']}): {'; '.join(r.parity.failures())}. "
                + (f"Localized: {r.parity.localization['summary']}. " if (r.parity.localization or {}).get("summary") else "")
                + f"The artifact is kept, marked failed, in {r.out_dir}/ (see report.md)."
            )
        return 0
    if args.command == "golden":
        from compiler import golden, spec

        s = dataclasses.replace(spec.resolve(args.model), trust_pickle=args.trust_pickle)
        out = golden.generate(s, args.out or golden.GOLDEN_ROOT / s.name, args.inputs, log=Progress().info)
        print(f"golden vectors written to {out}/", file=sys.stderr)
        return 0
    if args.command == "verify":
        from compiler.artifact.read import verify

        rep = verify(args.artifact, args.golden, args.on_device)
        _print(json.dumps(rep.as_dict(), indent=2))
        if not rep.passed:
            raise ParityFailure(f"parity failed for {args.artifact}: {'; '.join(rep.failures())}.")
        return 0
    if args.command == "bench":
        from compiler.bench import bench_many, table

        if args.json is not None and (args.json.is_dir() or not args.json.parent.is_dir()):
            raise BadInput(f"--json {str(args.json)!r}: give a file path in an existing directory.")
        res = bench_many(args.artifact, args.batch or [1], args.iters, args.warmup, args.threads)
        text = json.dumps(res if len(res) > 1 else res[0], indent=2)
        _print(text)
        if args.html:
            from compiler.artifact.read import read_manifest
            from compiler.artifact.write import write_report_html

            for a in args.artifact:
                rows = [{**r, "label": r["precision"]} for r in res if r["artifact"] == str(a)]
                print(f"report: {write_report_html(a, read_manifest(a), rows)}", file=sys.stderr)
        print(table(res), file=sys.stderr)
        if args.json:
            args.json.write_text(text + "\n")
        return 0
    if args.command == "matrix":
        from compiler.fleet.matrix import MatrixOptions
        from compiler.fleet.matrix import run as run_matrix

        s = run_matrix(args.fleet, MatrixOptions(args.out, args.jobs, args.ray, args.junit, args.cache, not args.no_cache),
                       Progress(quiet=args.quiet))
        print(f"matrix: {s['rows_passed']}/{s['rows']} rows passed in {s['seconds']} s; {args.out}/summary.md",
              file=sys.stderr)
        failed = [r for r in s["results"] if r.get("code") != 0 and not r.get("allow_fail")]
        if failed:
            raise ParityFailure(f"{len(failed)} required row(s) failed: " + "; ".join(
                f"{r['id']} (exit {r.get('code')}): {(r.get('message') or '').splitlines()[0][:200]}" for r in failed))
        return 0
    if args.command == "debug":
        from compiler.debug.command import debug

        result = debug(args.artifact, args.out, args.bisect, Progress(quiet=args.quiet))
        _print(json.dumps({k: result.get(k) for k in ("first_divergence", "unobserved", "keep_float") if k in result}, indent=2))
        return 0
    if args.command == "targets":
        return _target_ops(args.ops) if args.ops else _targets()
    if args.command == "passes":
        return _passes()
    raise AssertionError(args.command)


def _print(text: str) -> None:
    """stdout, where a reader that stopped early (`verify … | head`) is not an error of ours."""
    try:
        print(text, flush=True)
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit


def _targets() -> int:
    from compiler.profile import known_profiles, load_profile
    from targets import BACKENDS

    rows = [("target", "backend", "device", "precisions", "compile", "run", "notes")]
    for name in known_profiles():
        p = load_profile(name)
        if p.backend not in BACKENDS:
            rows.append((name, p.backend, p.device.name, ",".join(p.precisions), "no", "no", f"backend {p.backend!r} is not implemented"))
            continue
        a = BACKENDS[p.backend]().available(p)
        rows.append((name, p.backend, f"{p.device.name} ({p.device.arch})", ",".join(p.precisions),
                     "yes" if a.can_compile else "no", "yes" if a.can_run else "no", a.reason))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1])
    return 0


def _target_ops(target: str) -> int:
    from targets import get_backend, load_profile

    profile = load_profile(target)
    ops = get_backend(profile.backend).lowered_ops()
    if ops is None:
        _print(f"{target}: {profile.backend} imports ONNX itself; what it takes is its own (docs/backends/{profile.backend}.md)")
    else:
        _print(f"{target}: the {profile.backend} lowering converts {len(ops)} ONNX ops:\n" + "\n".join(ops))
    return 0


def _passes() -> int:
    from compiler.passes import PASSES, PIPELINES

    width = max(len(n) for n in PASSES)
    print("passes:")
    for name in sorted(PASSES):
        cls = PASSES[name]
        needs = f"  [needs {', '.join(sorted(cls.emits))}]" if cls.emits else ""
        print(f"  {name.ljust(width)}  {cls.description}{needs}")
    print("\npipelines:")
    for name, phases in PIPELINES.items():
        body = " · ".join(f"{ph.name}({', '.join(ph.passes)})" for ph in phases) or "(no passes)"
        print(f"  {name}: {body}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
