"""The drainer refuses to start without what it needs, with one line (exit status 2)."""

from __future__ import annotations

import pytest

from services.common.kube import Kube
from services.common.settings import SettingsError, load_settings
from services.drain.runner import run_drainer


def test_without_the_worker_deployment_it_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    settings = load_settings(
        {"KUBERNETES_API_URL": "http://127.0.0.1:1", "POD_NAMESPACE": "queue", "LOG_FORMAT": "text"}
    )
    assert run_drainer(settings, metrics_host="127.0.0.1", metrics_port=0) == 2
    assert "the drainer needs WORKER_DEPLOYMENT" in capsys.readouterr().err


def test_outside_a_pod_it_needs_the_api_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(SettingsError, match="set KUBERNETES_API_URL"):
        Kube.from_settings(load_settings({"WORKER_DEPLOYMENT": "w"}))
    kube = Kube.from_settings(
        load_settings({"KUBERNETES_API_URL": "http://127.0.0.1:1", "POD_NAMESPACE": "queue"})
    )
    assert (kube.base_url, kube.namespace) == ("http://127.0.0.1:1", "queue")
