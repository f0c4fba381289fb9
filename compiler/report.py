"""report.md: the parity result and build facts, for a person."""

from __future__ import annotations

from typing import Any

from compiler.verify import ParityReport


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def render(manifest: dict[str, Any], parity: ParityReport | None) -> str:
    m = manifest
    status = m["status"].upper()
    nodes = m['node_count']
    final = f" → {nodes['final']} at {m['precision']}" if nodes.get('final') not in (None, nodes['optimized']) else ""
    pipeline = ""
    if m.get("pipeline"):
        verified = ", every pass verified" if m['pipeline']['verified_each_pass'] else ""
        pipeline = f" (pipeline `{m['pipeline']['name']}`" + verified + ")"
    fusions = m.get("pipeline", {}).get("fusions")
    lines = [
        f"# {m['model']['name']} → {m['target']['name']} ({m['precision']}): {status}",
        "",
        f"- backend: {m['target']['backend']} · device: {m['target']['device']['name']} ({m['target']['device']['arch']})",
        f"- exporter: {m['frontend']['exporter']}"
        + (f" (fallback: {m['frontend']['fallback_reason']})" if m['frontend'].get('fallback_reason') else ""),
        f"- nodes: {nodes['exported']} exported → {nodes['optimized']} optimized" + final + pipeline,
        *(["- fusions: " + ", ".join(f"{k} ×{v}" for k, v in fusions.items())] if fusions else []),
        f"- golden: `{m['golden']['dir']}/` inside this artifact "
        f"({m['golden']['samples']} real samples, reference {m['golden']['reference']})",
        "- timings, host and input locations of this build: `build.json` (kept out of the content hash)",
        *([f"- verified with: {m['verified_with']}"] if m.get("verified_with") else []),
        "",
    ]
    if parity is not None:
        lines += [
            "## Parity",
            "",
            "| output | max abs | max rel | cosine (min) | SNR dB | top-k agr. | gates | result |",
            "|---|---|---|---|---|---|---|---|",
        ]
        runs = [("", parity), *((f" ({label})", v) for label, v in parity.variants.items()),
                *((f" (validation {label})", v) for label, v in parity.validation.items())]
        for suffix, name, o in ((sfx, n, o) for sfx, run in runs for n, o in run.outputs.items()):
            gates = ", ".join(f"{k} {v}" for k, v in o.tolerance.as_dict().items() if k not in ("reason", "k"))
            lines.append(
                f"| {name}{suffix} | {_fmt(o.max_abs)} | {_fmt(o.max_rel)} | {_fmt(o.cosine)} | {_fmt(o.snr_db)} | "
                f"{_fmt(o.topk_agreement)} | {gates} | {'pass' if o.passed else 'FAIL'} |"
            )
        if parity.metric is not None:
            mt = parity.metric
            lines += [
                "",
                f"Task metric **{mt.name}** on {mt.samples} labelled samples: reference {mt.reference:.4f}, "
                f"engine {mt.engine:.4f}, delta {mt.delta:+.4f} (may drop ≤ {mt.tolerance.max_drop}) — "
                f"{'pass' if mt.passed else 'FAIL'}",
            ]
        if not parity.passed:
            lines += ["", "### Failures", ""] + [f"- {f}" for f in parity.failures()]
        loc = parity.localization
        if loc:
            first = loc.get("first_divergence")
            lines += ["", "### Where it went wrong", "",
                      loc.get("summary") or f"localization did not run: {loc.get('error')}"]
            if first and first.get("source"):
                src = first["source"]
                lines += [f"- PyTorch: `{src.get('module', '?')}` at {src.get('line', '?')}"]
            lines += ["- every observed tensor: `debug.json`; the plot: `report.html`; the smallest keep-float list: "
                      "`python -m compiler debug --artifact DIR --bisect`"]
    if m.get("best"):
        b = m["best"]
        lines += ["", f"## Precision choice: {b['chosen'] or 'none passed'} ({b['criterion']})", "",
                  f"| precision | passed | p50 ms ({b.get('bench_shapes', 'not measured')}) [95 % interval] | min cosine "
                  "| validation, in the engine (min cosine) | engine MB | precision map | build s |",
                  "|---|---|---|---|---|---|---|---|"]
        lines += [f"| {c['precision']} | {'yes' if c['passed'] else 'no: ' + '; '.join(c['failures'])} | {_fmt(c.get('p50_ms'))}"
                  + (f" [{_fmt(c['p50_ci95_ms'][0])}, {_fmt(c['p50_ci95_ms'][1])}]" if c.get("p50_ci95_ms") else "")
                  + f" | {_fmt(c.get('accuracy'))} | "
                  + (", ".join(f"{g} {v:.5f}" for g, v in c["validation_cosine"].items()) if c.get("validation_cosine") else "–")
                  + f" | {_fmt(None if c.get('engine_bytes') is None else round(c['engine_bytes'] / 1e6, 2))}"
                  + f" | {c.get('precision_map', '–')} | {_fmt(c.get('build_seconds'))} |" for c in b["candidates"]]
        if len(b.get("tied_with_fastest") or []) > 1:
            lines += ["", f"Within noise of the fastest (intervals overlap): {', '.join(b['tied_with_fastest'])}; "
                      f"{b['chosen']} is the most accurate of them."]
        why = [(c["precision"], n) for c in b["candidates"] for n in c.get("float_nodes", [])]
        if why:
            lines += ["", "Nodes each candidate keeps in float, and why:", ""]
            lines += [f"- {p}: `{n['node']}` — {n['why']}" for p, n in why]
    if m.get("calibration"):
        c = m["calibration"]
        lines += ["", "## Precision", "",
                  f"- calibrator: {c['calibrator']} on {c['samples']} calibration samples"
                  + (f", preset `{c['preset']}`" if c.get("preset") else ""),
                  f"- nodes kept in float: {len(c['float_nodes'])}"
                  + (": " + ", ".join(f"`{n}`" for n in c["float_nodes"]) if c["float_nodes"] else ""),
                  "- per-node reasons, ranges and fallback rounds: `calibration.json`"]
    if m.get("deferred"):
        lines += ["", "## Deferred steps", "", "`{artifact}` stands for this artifact's directory, wherever it has been copied.", ""]
        lines += [f"- **{d['step']}**: {d['reason']}" + (f"\n  `{d['command']}`" if d.get("command") else "") for d in m["deferred"]]
    if any(p["modified"] for p in m.get("passes", [])):
        lines += ["", "## Passes (those that changed the model)", "",
                  "| phase | pass | nodes before | after | fired |", "|---|---|---|---|---|"]
        lines += [
            f"| {p['phase']} | {p['name']} | {p['nodes_before']} | {p['nodes_after']} | "
            + ", ".join(f"{k} ×{v}" for k, v in p.get("counts", {}).items()) + " |"
            for p in m["passes"] if p["modified"]
        ]
        if m["pipeline"].get("skipped"):
            lines += ["", "Not run for this target: " + "; ".join(f"{s['name']} ({s['reason']})" for s in m["pipeline"]["skipped"])]
    lines += ["", "## Files", "", "| file | bytes | sha256 |", "|---|---|---|"]
    lines += [f"| {f['path']} | {f['bytes']} | `{f['sha256'][:16]}…` |" for f in m["files"]]
    return "\n".join(lines) + "\n"
