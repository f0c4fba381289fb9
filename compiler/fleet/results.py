"""What a matrix leaves for CI and for people: summary.json, summary.md (fit for a pull-request
comment), index.html (a table linking each artifact's report) and JUnit XML (a test suite per
target, a test case per model × precision; the failure text is the parity reason; properties
hold p50 latency, build seconds and the cache's hits).

JUnit is written with the standard library's ElementTree (the format is a few elements; no
library here writes it, and pytest's own writer is internal to pytest).
"""

from __future__ import annotations

import html
import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from compiler.artifact.files import write_json

PASSED = "passed"


def ok(rec: dict[str, Any]) -> bool:
    return rec.get("code") == 0


def summary(rows: list[dict[str, Any]], seconds: float, executor: str, interrupted: bool) -> dict[str, Any]:
    required_failed = [r for r in rows if not ok(r) and not r.get("allow_fail")]
    return {"passed": not required_failed and not interrupted, "interrupted": interrupted, "executor": executor,
            "seconds": round(seconds, 1), "rows": len(rows), "rows_passed": sum(ok(r) for r in rows),
            "rows_failed": len(rows) - sum(ok(r) for r in rows),
            "rows_per_minute": round(len(rows) / (seconds / 60), 2) if seconds > 0 else None,
            "results": sorted(rows, key=lambda r: r["id"])}


def _cache_line(rec: dict[str, Any]) -> str:
    stages = rec.get("cache") or {}
    hits = sum(1 for v in stages.values() if v.startswith("hit"))
    return f"{hits}/{len(stages)} from cache" if stages else "–"


def markdown(s: dict[str, Any]) -> str:
    icon = {True: "✅", False: "❌"}
    lines = [f"## model-compiler matrix: {icon[s['passed']]} {s['rows_passed']}/{s['rows']} rows passed"
             + (" (interrupted)" if s["interrupted"] else ""), "",
             f"{s['executor']}, {s['seconds']} s, {s['rows_per_minute']} rows/min", "",
             "| target | model | precision | result | p50 ms | build s | cache | note |", "|---|---|---|---|---|---|---|---|"]
    for r in s["results"]:
        note = (r.get("message") or "").splitlines()[0][:160] if not ok(r) else r.get("device_note") or ", ".join(
            f"deferred: {d}" for d in r.get("deferred", []))
        mark = icon[ok(r)] + (" (allowed)" if r.get("allow_fail") and not ok(r) else "")
        lines.append(f"| {r['target']} | {r['model']} | {r['precision']} | {mark} {r.get('status', '')} | "
                     f"{_num(r.get('p50_ms'))} | {_num(r.get('seconds'))} | {_cache_line(r)} | {note.replace('|', '/')} |")
    return "\n".join(lines) + "\n"


def _num(v: Any) -> str:
    return "–" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)


def junit(s: dict[str, Any]) -> ET.ElementTree:
    root = ET.Element("testsuites", name="model-compiler matrix", tests=str(s["rows"]),
                      failures=str(s["rows_failed"]), time=str(s["seconds"]))
    by_target: dict[str, list[dict[str, Any]]] = {}
    for r in s["results"]:
        by_target.setdefault(r["target"], []).append(r)
    for target, rows in sorted(by_target.items()):
        failed = [r for r in rows if not ok(r)]
        suite = ET.SubElement(root, "testsuite", name=target, tests=str(len(rows)), failures=str(len(failed)),
                              errors="0", skipped="0", time=str(round(sum(r.get("seconds") or 0 for r in rows), 3)))
        for r in rows:
            case = ET.SubElement(suite, "testcase", classname=target, name=f"{r['model']} {r['precision']}",
                                 time=str(r.get("seconds") or 0))
            props = ET.SubElement(case, "properties")
            for name, value in (("p50_ms", r.get("p50_ms")), ("build_seconds", r.get("seconds")),
                                ("exit_code", r.get("code")), ("cache", _cache_line(r)), ("artifact", r.get("out")),
                                ("deferred", ", ".join(r.get("deferred", [])) or None)):
                if value is not None:
                    ET.SubElement(props, "property", name=name, value=str(value))
            if not ok(r):
                message = (r.get("message") or f"exit {r.get('code')}").strip()
                el = ET.SubElement(case, "failure", message=message.splitlines()[0][:500], type=f"exit {r.get('code')}")
                el.text = message
    ET.indent(root)
    return ET.ElementTree(root)


def index_html(s: dict[str, Any], root: Path) -> str:
    rows = []
    for r in s["results"]:
        out = Path(r.get("out") or "")
        report = out / "report.html" if (out / "report.html").is_file() else out / "report.md"
        link = html.escape(os.path.relpath(report, root)) if report.is_file() else None
        cell = f'<a href="{link}">{html.escape(r["id"])}</a>' if link else html.escape(r["id"])
        cls = "pass" if ok(r) else "fail"
        rows.append(f'<tr class="{cls}"><td>{cell}</td><td>{html.escape(str(r.get("status", "")))}</td>'
                    f'<td>{_num(r.get("p50_ms"))}</td><td>{_num(r.get("seconds"))}</td><td>{_cache_line(r)}</td>'
                    f'<td>{html.escape((r.get("message") or "").splitlines()[0][:200] if not ok(r) else "")}</td></tr>')
    head = (f"{s['rows_passed']}/{s['rows']} rows passed · {s['executor']} · {s['seconds']} s"
            + (" · interrupted" if s["interrupted"] else ""))
    return ("<!doctype html><html><head><meta charset=\"utf-8\"><title>model-compiler matrix</title><style>"
            "body{font-family:system-ui,sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
            "padding:4px 8px;text-align:left}tr.pass td:nth-child(2){color:#1a7f37}tr.fail td:nth-child(2){color:#cf222e}"
            f"</style></head><body><h1>model-compiler matrix</h1><p>{html.escape(head)}</p><table>"
            "<tr><th>row (target/model/precision)</th><th>result</th><th>p50 ms</th><th>build s</th><th>cache</th>"
            "<th>reason</th></tr>" + "".join(rows) + "</table></body></html>\n")


def write(s: dict[str, Any], root: Path, junit_path: Path | None) -> None:
    root.mkdir(parents=True, exist_ok=True)
    write_json(root / "summary.json", s)
    (root / "summary.md").write_text(markdown(s))
    (root / "index.html").write_text(index_html(s, root))
    if junit_path is not None:
        junit(s).write(junit_path, encoding="unicode", xml_declaration=True)
