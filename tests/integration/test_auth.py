"""API tokens: /api/* needs a valid bearer token; health, metrics and the page do not."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.support import Stack

TOKENS = ("s3cret-token-number-one", "another-valid-token-2")


def test_bearer_tokens_guard_the_api(sqlite_url: str, tmp_path: Path) -> None:
    token_file = tmp_path / "tokens"
    token_file.write_text(TOKENS[1] + "\n")
    stack = Stack(sqlite_url, tmp_path, API_TOKENS=TOKENS[0], API_TOKENS_FILE=str(token_file))
    try:
        stack.start_api()
        base = stack.base_url
        for headers in (
            {},
            {"Authorization": "Bearer wrong-token-wrong-token"},
            {"Authorization": f"Bearer {TOKENS[0][:-1]}"},  # a prefix is not enough
            {"Authorization": f"Basic {TOKENS[0]}"},
            {"Authorization": TOKENS[0]},
        ):
            for method, path in (("GET", "/api/workflows"), ("POST", "/api/workflows"),
                                 ("GET", "/api/queues"), ("GET", "/api/workflows/x")):  # fmt: skip
                resp = httpx.request(method, base + path, headers=headers, json={"num_steps": 1})
                assert resp.status_code == 401, (headers, path)
                assert resp.json() == {
                    "error": {"code": "unauthorized", "message": "missing or invalid bearer token"}
                }
                assert resp.headers["www-authenticate"].startswith("Bearer")
        for token in TOKENS:
            ok = httpx.get(base + "/api/workflows", headers={"Authorization": f"Bearer {token}"})
            assert ok.status_code == 200
        for open_path in ("/healthz", "/readyz", "/metrics", "/", "/openapi.json"):
            assert httpx.get(base + open_path).status_code == 200
    finally:
        stack.stop()


def test_streams_take_the_token_as_a_query_parameter_and_nothing_else_does(
    sqlite_url: str, tmp_path: Path
) -> None:
    """EventSource cannot send headers: ?access_token= works on the two stream paths only."""
    stack = Stack(sqlite_url, tmp_path, API_TOKENS=TOKENS[0])
    try:
        stack.start_api()
        base = stack.base_url
        good, bad = f"access_token={TOKENS[0]}", "access_token=wrong-token-wrong-token"
        with httpx.stream("GET", f"{base}/api/workflows/events?{good}") as resp:
            assert resp.status_code == 200
            assert next(resp.iter_lines()) == ": stream open"
        assert httpx.get(f"{base}/api/workflows/no-such-id/events?{good}").status_code == 404
        for method, url in (
            ("GET", f"{base}/api/workflows/events"),
            ("GET", f"{base}/api/workflows/events?{bad}"),
            ("GET", f"{base}/api/workflows/x/events?{bad}"),
            ("GET", f"{base}/api/workflows?{good}"),
            ("GET", f"{base}/api/queues?{good}"),
            ("POST", f"{base}/api/workflows?{good}"),
            ("POST", f"{base}/api/workflows/x/cancel?{good}"),
        ):
            resp = httpx.request(method, url, json={"num_steps": 1})
            assert resp.status_code == 401, (method, url)
        # The command-line client sends its token as a header, from --token or the environment.
        cli = [sys.executable, "-m", "services.cli", "ls", "--url", base]
        env = {k: v for k, v in os.environ.items() if k != "QUEUE_WORKER_TOKEN"}
        refused = subprocess.run(cli, env=env, capture_output=True, text=True, timeout=60)
        assert refused.returncode == 3
        assert refused.stderr.strip() == (
            "queue-worker: error: HTTP 401: missing or invalid bearer token"
        )
        ways: list[tuple[list[str], dict[str, str]]] = [
            ([f"--token={TOKENS[0]}"], {}),
            ([], {"QUEUE_WORKER_TOKEN": TOKENS[0]}),
        ]
        for extra, token_env in ways:
            ok = subprocess.run(
                cli + extra, env={**env, **token_env}, capture_output=True, text=True, timeout=60
            )
            assert ok.returncode == 0, ok.stderr
            assert ok.stdout.strip() == "no workflows"
    finally:
        stack.stop()
