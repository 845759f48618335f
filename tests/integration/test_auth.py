"""API tokens: /api/* needs a valid bearer token; health, metrics and the page do not."""

from __future__ import annotations

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
