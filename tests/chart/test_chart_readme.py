"""charts/queue-worker/README.md is generated from values.yaml: it must not fall behind it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.chart.helm import CHART, ROOT

SCRIPT = ROOT / "scripts" / "chart-readme.py"


def test_chart_readme_is_current() -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr


def test_chart_readme_lists_every_documented_value() -> None:
    readme = (CHART / "README.md").read_text()
    for key in ("worker.concurrency", "networkPolicy.metricsFrom", "api.auth.existingSecret"):
        assert f"| `{key}` |" in readme, key
    # A default is what values.yaml sets, and a `# --` comment is the description.
    assert "| `worker.concurrency` | `10` | Workflows one pod runs at once" in readme


def test_check_fails_on_a_stale_readme(tmp_path: Path) -> None:
    stale = tmp_path / "README.md"
    current = (CHART / "README.md").read_text()
    stale.write_text(current.replace("worker.concurrency", "worker.concurency", 1))
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--check", "--readme", str(stale)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert "stale" in proc.stderr
