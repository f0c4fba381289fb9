"""The shape of the code: no import cycle among the project's modules (imports inside functions
included: a lazy import is still a dependency), the layers point down, and no module in
`compiler/` outgrows 350 lines."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

PACKAGES = ("compiler", "calibration", "targets", "models")
MAX_LINES = 350


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for p in (REPO / pkg).rglob("*.py"):
            parts = list(p.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = p
    return out


def _imports(path: Path, name: str, modules: dict[str, Path]) -> set[str]:
    """Project modules `name` imports (a `from pkg import sub` of a submodule counts as sub)."""
    tree = ast.parse(path.read_text(), str(path))
    is_pkg = path.name == "__init__.py"
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                found.add(a.name)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_pkg else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in modules]
            found.update(subs)
            if len(subs) < len(node.names):  # names defined in `base` itself (not submodules of it)
                found.add(base)
    out = set()
    for f in found:
        while f and f not in modules:
            f = f.rpartition(".")[0]
        if f and f != name:
            out.add(f)
    return out


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, name, modules) for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle():
    cycles = _cycles(_graph())
    assert cycles == [], "import cycles: " + "; ".join(" ↔ ".join(c) for c in cycles)


def test_the_cycle_check_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_nothing_imports_the_cli_or_the_orchestration_from_below():
    """cli → build → {passes, calibration, targets} → artifact, cache, core. Nothing but the CLI
    imports the build package from outside it, and nothing imports the CLI."""
    graph = _graph()
    for name, deps in graph.items():
        assert "compiler.cli" not in deps or name == "compiler.__main__", f"{name} imports the CLI"
        if not name.startswith(("compiler.build", "compiler.cli", "compiler.versus", "compiler.fleet")):
            bad = [d for d in deps if d.startswith("compiler.build")]
            assert not bad, f"{name} imports the orchestration: {bad}"
        if name.startswith(("calibration", "targets")):
            bad = [d for d in deps if d.startswith("compiler.artifact.read") or d.startswith("compiler.artifact.write")]
            assert not bad, f"{name} imports the artifact readers: {bad}"


def test_no_module_in_compiler_is_longer_than_350_lines():
    long = {str(p.relative_to(REPO)): n for p in (REPO / "compiler").rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}, f"modules over {MAX_LINES} lines: {long}"


def test_no_file_points_outside_the_repository():
    """Docs and comments cite the project's own docs/, never a sibling folder or a machine path."""
    import subprocess

    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    bad = []
    for f in files:
        p = REPO / f
        if p.suffix not in (".py", ".md", ".toml", ".txt", ".cfg", ".yml", ".yaml", "") or not p.is_file():
            continue
        text = p.read_text(errors="ignore")
        for needle in ("../shared", "/work/", "shared/DESIGN", "shared/TOOLCHAINS", "shared/MODELS"):
            if needle in text and p.name != "test_structure.py":
                bad.append(f"{f}: {needle}")
    assert bad == []
