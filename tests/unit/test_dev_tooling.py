"""The developer's tooling says what CI does: the pre-commit hooks are the Makefile's checks,
the dev lock pins every test and dev tool exactly, and the Makefile parses cleanly."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]


def _make_recipe(target: str) -> list[str]:
    proc = subprocess.run(
        ["make", "--dry-run", "--always-make", "-f", "Makefile", target],
        cwd=ROOT, capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    assert "warning" not in proc.stderr, proc.stderr  # e.g. a target defined twice
    return [line for line in proc.stdout.splitlines() if line.startswith(".venv/bin/")]


def test_pre_commit_hooks_run_the_checks_ci_runs() -> None:
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    (repo,) = config["repos"]
    assert repo["repo"] == "local"  # nothing fetched: the venv's pinned tools
    entries = [hook["entry"] for hook in repo["hooks"]]
    assert all(hook["language"] == "system" for hook in repo["hooks"])
    ci = [c for c in _make_recipe("check") if "pip" not in c]
    assert entries == ci


def test_dev_lock_pins_every_test_and_dev_tool_exactly() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lock = (ROOT / "requirements" / "dev.txt").read_text()
    pins = {
        str(canonicalize_name(m.group(1))): m.group(2)
        for m in re.finditer(r"^([A-Za-z0-9._-]+)==([^ ;\\]+)", lock, re.MULTILINE)
    }
    wanted = [*project["dependencies"], *project["optional-dependencies"]["test"]]
    wanted += project["optional-dependencies"]["dev"]
    for raw in wanted:
        requirement = Requirement(raw)
        name = str(canonicalize_name(requirement.name))
        if name == "queue-worker":  # the dev extra includes the test extra
            continue
        assert name in pins, f"{name} is not in requirements/dev.txt: run scripts/lock.sh"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"{raw} is not satisfied by {name}=={pins[name]}: run scripts/lock.sh"
        )
    assert lock.count("--hash=sha256:") >= len(pins)


def test_readme_layout_names_only_what_exists() -> None:
    readme = (ROOT / "README.md").read_text()
    layout = readme.split("## Layout", 1)[1].split("```", 2)[1]
    skip = {".venv", ".git", ".mypy_cache", ".ruff_cache", ".pytest_cache", "node_modules"}
    paths: set[str] = set()
    for path in ROOT.rglob("*"):
        rel = path.relative_to(ROOT)
        if not skip & set(rel.parts):
            paths.add(rel.as_posix())
    tokens = re.findall(
        r"[\w.+-]+(?:/[\w.+-]+)*(?:/|\.(?:py|sh|md|txt|yaml))(?=[\s,;:)]|$)", layout
    )
    assert len(tokens) > 40, tokens
    missing = [
        t for t in tokens
        if not any(p == t.rstrip("/") or p.endswith("/" + t.rstrip("/")) for p in paths)
    ]  # fmt: skip
    assert not missing, missing
