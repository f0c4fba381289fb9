"""report.html: the artifact for a person who would rather look than read — self-contained (inline
SVG drawn by matplotlib, inline CSS, no script, nothing fetched), in every artifact.

Sections: the verdict and the parity table (golden, variants, validation groups); error along the
graph (SNR of every observed tensor in topological order, the first divergence marked) when the
build or `debug` localized one; the precision map (nodes per precision, every node kept in float
and why); latency (p50 / p95 / p99 per batch) where `best` or `bench` measured it; the build's
timeline per stage. The timeline and latencies are facts of one run (build.json), so the page sits
beside build.json outside the manifest's content hash.
"""

from __future__ import annotations

import html
import io
from typing import Any

PAGE_CSS = ("body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#1f2328}"
            "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #d0d7de;padding:3px 8px;text-align:left}"
            "th{background:#f6f8fa}.pass{color:#1a7f37}.fail{color:#cf222e}h2{margin-top:1.6em}"
            "figure{margin:.5em 0}figcaption{color:#59636e;font-size:.9em}")


def _svg(fig: Any) -> str:
    """The figure as inline SVG, byte-stable (no date, fixed ids) so equal inputs draw equal pages."""
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": "model-compiler", "svg.fonttype": "none"}):
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None})
    import matplotlib.pyplot as plt

    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.4g}"
    return html.escape(str(v))


def _parity_rows(label: str, rep: dict[str, Any]) -> list[str]:
    rows = []
    for name, o in rep.get("outputs", {}).items():
        cls = "pass" if o.get("passed") else "fail"
        rows.append(f"<tr><td>{html.escape(label)}</td><td>{html.escape(name)}</td><td>{_fmt(o.get('max_abs'))}</td>"
                    f"<td>{_fmt(o.get('cosine'))}</td><td>{_fmt(o.get('snr_db'))}</td><td>{_fmt(o.get('topk_agreement'))}</td>"
                    f"<td class=\"{cls}\">{'pass' if o.get('passed') else 'FAIL: ' + html.escape('; '.join(o.get('failures', [])))}"
                    "</td></tr>")
    return rows


def parity_section(parity: dict[str, Any] | None) -> str:
    if parity is None:
        return "<h2>Parity</h2><p>Not verified on this host (the engine cannot run here; see the deferred steps).</p>"
    rows = _parity_rows("golden", parity)
    for label, rep in parity.get("variants", {}).items():
        rows += _parity_rows(label, rep)
    for label, rep in parity.get("validation", {}).items():
        rows += _parity_rows(f"validation {label}", rep)
    out = ("<h2>Parity</h2><table><tr><th>set</th><th>output</th><th>max abs</th><th>cosine (min)</th><th>SNR dB</th>"
           "<th>top-1 agr.</th><th>result</th></tr>" + "".join(rows) + "</table>")
    if parity.get("metric"):
        m = parity["metric"]
        out += f"<p>{html.escape(m['name'])}: {m['engine']:.4f} against {m['reference']:.4f} (drop ≤ {m['tolerance']['max_drop']})</p>"
    if parity.get("precision_gate"):
        out += "<p class=\"fail\">" + html.escape("; ".join(parity["precision_gate"])) + "</p>"
    return out


def divergence_section(debug: dict[str, Any] | None) -> str:
    if not debug or not debug.get("tensors"):
        return ""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tensors = debug["tensors"]
    xs = list(range(len(tensors)))
    snr = [min(t["snr_db"], 120.0) if t.get("snr_db") is not None else float("nan") for t in tensors]
    fig, ax = plt.subplots(figsize=(10, 3.2))
    ax.plot(xs, snr, marker=".", linewidth=1, color="#0969da")
    ax.set_xlabel("observed tensor (topological order)")
    ax.set_ylabel("SNR vs float reference (dB)")
    first = debug.get("first_divergence")
    if first is not None:
        i = next((k for k, t in enumerate(tensors) if t["tensor"] == first["tensor"]), None)
        if i is not None:
            ax.axvline(i, color="#cf222e", linestyle="--")
            ax.annotate(f"first divergence: {first['node']} ({first['op_type']})", (i, snr[i]), color="#cf222e",
                        xytext=(5, 5), textcoords="offset points")
    ax.grid(alpha=0.3)
    caption = (f"{len(tensors)} tensors observed in the engine, {len(debug.get('unobserved', []))} not observable "
               "(fused away by the runtime)")
    out = f"<h2>Error along the graph</h2><figure>{_svg(fig)}<figcaption>{html.escape(caption)}</figcaption></figure>"
    if first is not None:
        src = first.get("source") or {}
        out += ("<p class=\"fail\">First divergence: node <b>" + html.escape(first["node"]) + "</b> (" + html.escape(first["op_type"])
                + "), tensor <code>" + html.escape(first["tensor"]) + "</code>"
                + (f", module <code>{html.escape(src['module'])}</code>" if src.get("module") else "")
                + (f", {html.escape(src['line'])}" if src.get("line") else "") + "</p>")
    else:
        out += "<p class=\"pass\">No divergence: every observed tensor is within tolerance.</p>"
    if debug.get("keep_float"):
        out += "<p>Keep-float list (bisection): <code>" + html.escape(",".join(debug["keep_float"])) + "</code></p>"
    return out


def precision_section(manifest: dict[str, Any], calibration: dict[str, Any] | None) -> str:
    final = manifest.get("ops", {}).get("final", {})
    if not final:
        return ""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    quant = sum(v for k, v in final.items() if k in ("QuantizeLinear", "DequantizeLinear"))
    cast = final.get("Cast", 0)
    compute = sum(final.values()) - quant - cast
    floats = (calibration or {}).get("fallback", {}).get("float_nodes") or (calibration or {}).get("float_nodes") or []
    p = manifest.get("precision", "fp32")
    reduced = max(compute - len(floats), 0) if p != "fp32" else 0
    labels = [f"{p} nodes", "kept in float", "Q/DQ", "Cast"] if p != "fp32" else ["fp32 nodes"]
    values = [reduced, len(floats), quant, cast] if p != "fp32" else [compute]
    fig, ax = plt.subplots(figsize=(6, 0.5 + 0.4 * len(labels)))
    ax.barh(labels, values, color=["#0969da", "#bf8700", "#8c959f", "#8c959f"][: len(labels)])
    for y, v in enumerate(values):
        ax.text(v, y, f" {v}", va="center")
    ax.invert_yaxis()
    ax.set_xlabel("nodes in the final graph")
    out = f"<h2>Precision map</h2><figure>{_svg(fig)}</figure>"
    if floats:
        out += "<table><tr><th>node kept in float</th><th>why</th></tr>" + "".join(
            f"<tr><td>{html.escape(str(n.get('node')))}</td><td>{html.escape(str(n.get('why', '')))}</td></tr>"
            for n in floats) + "</table>"
    return out


def latency_section(latency: list[dict[str, Any]]) -> str:
    """`latency`: rows with a label, batch and latency_ms {p50, p95, p99} (bench results)."""
    if not latency:
        return ""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 0.6 + 0.45 * len(latency)))
    names = [f"{r.get('label', r.get('precision', ''))} (batch {r['batch']})" for r in latency]
    for q, color in (("p99", "#ffd8b5"), ("p95", "#fb8f44"), ("p50", "#0969da")):
        values = [r["latency_ms"].get(q) for r in latency]
        if any(v is not None for v in values):
            ax.barh(names, [v or 0 for v in values], color=color, label=q)
    ax.invert_yaxis()
    ax.set_xlabel("latency (ms)")
    ax.legend(loc="lower right")
    return f"<h2>Latency</h2><figure>{_svg(fig)}<figcaption>p50 / p95 / p99 per batch, this host, one thread</figcaption></figure>"


def timeline_section(volatile: dict[str, Any] | None) -> str:
    stages = (volatile or {}).get("stage_seconds") or {}
    if not stages:
        return ""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cache = (volatile or {}).get("cache", {}).get("stages", {})
    fig, ax = plt.subplots(figsize=(8, 0.6 + 0.4 * len(stages)))
    start = 0.0
    for i, (name, secs) in enumerate(stages.items()):
        hit = str(cache.get(name, "")).startswith("hit")
        ax.barh(i, max(secs, 0.001), left=start, color="#8c959f" if hit else "#0969da")
        ax.text(start + secs, i, f" {secs:.2f} s" + (" (cache)" if hit else ""), va="center")
        start += secs
    ax.set_yticks(range(len(stages)), list(stages))
    ax.invert_yaxis()
    ax.set_xlabel("seconds")
    return f"<h2>Build timeline</h2><figure>{_svg(fig)}<figcaption>grey: served from the stage cache</figcaption></figure>"


def render(manifest: dict[str, Any], parity: dict[str, Any] | None, calibration: dict[str, Any] | None = None,
           debug: dict[str, Any] | None = None, volatile: dict[str, Any] | None = None,
           latency: list[dict[str, Any]] | None = None) -> str:
    m = manifest
    status = m.get("status", "unverified")
    cls = "pass" if status == "passed" else "fail"
    title = f"{m['model']['name']} → {m['target']['name']} ({m['precision']})"
    latency = list(latency or [])
    if not latency:  # `best` timed its candidates: their p50s
        latency = [{"label": c["precision"], "batch": (m.get("best") or {}).get("bench_shapes", "1"),
                    "latency_ms": {"p50": c["p50_ms"]}} for c in (m.get("best") or {}).get("candidates", [])
                   if c.get("p50_ms") is not None]
    facts = [f"backend {m['target']['backend']}", f"device {m['target']['device']['name']} ({m['target']['device']['arch']})",
             f"exporter {m['frontend']['exporter']}", f"verified with {m.get('verified_with') or 'nothing here'}"]
    deferred = "".join(f"<li>{html.escape(d['step'])}: {html.escape(d['reason'])}</li>" for d in m.get("deferred", []))
    body = [f"<h1>{html.escape(title)}: <span class=\"{cls}\">{html.escape(status.upper())}</span></h1>",
            "<p>" + " · ".join(html.escape(f) for f in facts) + "</p>",
            f"<h2>Deferred to the device</h2><ul>{deferred}</ul>" if deferred else "",
            parity_section(parity), divergence_section(debug), precision_section(m, calibration),
            latency_section(latency), timeline_section(volatile)]
    return (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{PAGE_CSS}</style></head><body>" + "".join(body) + "</body></html>\n")
