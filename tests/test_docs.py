"""The docs a user copies from work: the README's Python API example runs, and the CI workflows in
docs/ci.md parse and only run commands that exist."""

from __future__ import annotations

import re
import shlex

import pytest
import yaml

from tests.conftest import REPO


def _blocks(path, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", path.read_text(), flags=re.S)


def test_the_readme_python_api_example_runs(tmp_path, monkeypatch):
    (example,) = [b for b in _blocks(REPO / "README.md", "python") if "from compiler.build import build" in b]
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(example, "README.md (Python API)", "exec"), scope)  # noqa: S102 - the project's own README
    result = scope["result"]
    assert result.passed and result.status == "passed"
    assert result.out_dir.resolve() == (tmp_path / "build" / "cpu" / "tiny").resolve()
    from compiler.cli import main

    assert main(["verify", "--artifact", str(tmp_path / "build" / "cpu" / "tiny")]) == 0


def _commands(workflow: dict) -> list[str]:
    if "jobs" in workflow:  # GitHub Actions
        return [s["run"] for job in workflow["jobs"].values() for s in job["steps"] if "run" in s]
    return [c for job in workflow.values() if isinstance(job, dict) for c in job.get("script", [])]


def _check(cmd: str, make_targets: set[str]) -> None:
    from compiler.cli import _parser

    words = shlex.split(cmd.replace('"$GITHUB_STEP_SUMMARY"', "summary"))
    if words[0] == "make":
        assert words[1] in make_targets, f"make {words[1]}: no such target"
    elif words[0].endswith("python") and words[1:3] == ["-m", "compiler"]:
        _parser().parse_args(words[3:])  # SystemExit on an unknown subcommand or flag
    else:
        assert words[0] in ("cat",), f"unexpected command {cmd!r}"


@pytest.mark.parametrize("index", [0, 1], ids=["github", "gitlab"])
def test_the_ci_workflows_parse_and_run_commands_that_exist(index):
    workflows = [yaml.safe_load(b) for b in _blocks(REPO / "docs" / "ci.md", "yaml")]
    assert len(workflows) == 2
    workflow = workflows[index]
    make_targets = set(re.findall(r"^([a-z][a-z0-9-]*):", (REPO / "Makefile").read_text(), flags=re.M))
    commands = _commands(workflow)
    assert any("matrix" in c and "--junit" in c for c in commands)
    for cmd in commands:
        _check(cmd, make_targets)
    if index == 0:
        uses = [s.get("uses", "") for s in workflow["jobs"]["matrix"]["steps"]]
        assert any(u.startswith("actions/cache@") for u in uses) and any("junit" in u for u in uses)
    else:
        assert workflow["model-parity"]["artifacts"]["reports"]["junit"] == "build/matrix/junit.xml"
