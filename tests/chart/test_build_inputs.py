"""What the images are built from, checked without Docker: the hashed lock files still satisfy
pyproject.toml, and the Dockerfiles keep their promises (locked install, no compiler, non-root,
exec-form entrypoint, one service per image, a shared dependency layer).

tests/e2e/test_containers.py builds and runs the images for real.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.chart.helm import ROOT

REQUIREMENTS = ROOT / "requirements"
DOCKERFILES = {"api": ROOT / "Dockerfile.api", "worker": ROOT / "Dockerfile.worker"}
BUILD_SCRIPT = ROOT / "scripts" / "image-build.sh"


def _pins(lock: Path) -> dict[str, tuple[str, int]]:
    """{package: (version, number of hashes)} from a `uv pip compile --generate-hashes` file."""
    pins: dict[str, tuple[str, int]] = {}
    current = ""
    for line in lock.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9._-]+)==([^ ;\\]+)", line)
        if match:
            current = str(canonicalize_name(match.group(1)))
            pins[current] = (match.group(2), 0)
        elif line.strip().startswith("--hash=sha256:") and current:
            version, hashes = pins[current]
            pins[current] = (version, hashes + 1)
    return pins


def test_runtime_lock_satisfies_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = _pins(REQUIREMENTS / "runtime.txt")
    for raw in project["dependencies"]:
        requirement = Requirement(raw)
        name = str(canonicalize_name(requirement.name))
        assert name in pins, f"{name} is not in requirements/runtime.txt: run scripts/lock.sh"
        assert requirement.specifier.contains(pins[name][0], prereleases=True), (
            f"{raw} is not satisfied by {name}=={pins[name][0]}: run scripts/lock.sh"
        )
        for extra in requirement.extras:  # psycopg[binary] -> psycopg-binary
            assert f"{name}-{extra}" in pins, f"{name}[{extra}] is not locked"


@pytest.mark.parametrize("lock", ["runtime.txt", "build.txt"])
def test_every_pin_is_exact_and_hashed(lock: str) -> None:
    text = (REQUIREMENTS / lock).read_text()
    pins = _pins(REQUIREMENTS / lock)
    assert pins
    assert all(hashes > 0 for _, hashes in pins.values()), pins
    assert not re.search(r"^(-e|git\+|https?://)", text, re.MULTILINE)


def test_build_lock_pins_the_installer_of_build_in() -> None:
    wanted = Requirement(
        next(
            line
            for line in (REQUIREMENTS / "build.in").read_text().splitlines()
            if line and not line.startswith("#")
        )
    )
    version, _ = _pins(REQUIREMENTS / "build.txt")[str(canonicalize_name(wanted.name))]
    assert wanted.specifier.contains(version)


def _instructions(dockerfile: Path) -> list[str]:
    """Instructions with continuation lines joined, comments dropped."""
    out: list[str] = []
    pending = ""
    for line in dockerfile.read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        pending += " " + stripped.rstrip("\\").strip()
        if not stripped.endswith("\\"):
            out.append(" ".join(pending.split()))
            pending = ""
    return out


@pytest.mark.parametrize("component", ["api", "worker"])
def test_dockerfile_promises(component: str) -> None:
    steps = _instructions(DOCKERFILES[component])
    assert steps[0].startswith("ARG BASE_IMAGE=python:3.11-slim")
    froms = [s for s in steps if s.startswith("FROM ")]
    assert froms == ["FROM ${BASE_IMAGE} AS builder", "FROM ${BASE_IMAGE}"]
    final = steps[steps.index("FROM ${BASE_IMAGE}") :]
    # The final stage installs nothing: it only copies the venv and the code from the builder.
    assert not [s for s in final if re.search(r"\b(pip|uv|apt-get|gcc)\b", s)]
    assert [s for s in final if s.startswith("COPY ")] == [
        "COPY --from=builder /opt/venv /opt/venv",
        "COPY --from=builder /app /app",
    ]
    (user,) = [s for s in final if s.startswith("USER ")]
    assert user == "USER ${APP_UID}:${APP_UID}"
    assert "ARG APP_UID=10001" in final
    (entrypoint,) = [s for s in final if s.startswith("ENTRYPOINT ")]
    assert json.loads(entrypoint.removeprefix("ENTRYPOINT ")) == ["/opt/venv/bin/queue-worker"]
    (cmd,) = [s for s in final if s.startswith("CMD ")]
    assert json.loads(cmd.removeprefix("CMD "))[0] == component
    # The builder's commands are scripts/image-build.sh, shared by both Dockerfiles.
    assert "RUN sh scripts/image-build.sh deps" in steps
    assert f"RUN sh scripts/image-build.sh app {component}" in steps
    install = " ".join(s for s in _instructions(BUILD_SCRIPT) if "uv pip sync" in s)
    assert "--require-hashes" in install
    assert "--only-binary" in install
    assert "requirements/runtime.txt" in install


def test_each_image_copies_only_its_own_service() -> None:
    for component, other in (("api", "worker"), ("worker", "api")):
        copies = [s for s in _instructions(DOCKERFILES[component]) if s.startswith("COPY ")]
        assert any(f"services/{component}/" in s for s in copies)
        assert not any(f"services/{other}" in s for s in copies)


def test_dependency_layer_is_identical_in_both_dockerfiles() -> None:
    """Same instructions up to the first service COPY: the second build reuses the cache."""

    def prefix(component: str) -> list[str]:
        steps = _instructions(DOCKERFILES[component])
        end = next(i for i, s in enumerate(steps) if s.startswith("COPY services"))
        return steps[:end]

    assert prefix("api") == prefix("worker")


def test_dockerignore_lets_in_exactly_what_the_dockerfiles_copy() -> None:
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*", "an allow-list keeps .venv, .git and caches out of the context"
    allowed = [line[1:].rstrip("/") for line in lines if line.startswith("!")]
    for dockerfile in DOCKERFILES.values():
        for step in _instructions(dockerfile):
            if not step.startswith("COPY ") or "--from=" in step:
                continue
            for source in step.split()[1:-1]:
                assert (ROOT / source).exists(), source
                assert any(
                    source.rstrip("/") == a or source.startswith(a + "/") for a in allowed
                ), f"{source} is excluded by .dockerignore"
