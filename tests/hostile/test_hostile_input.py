"""Hand-picked hostile requests against the real API process over HTTP, on Postgres and on SQLite:
oversized and deeply nested bodies, invalid UTF-8, absurd numbers, limits and cursors, SQL-looking
strings, NUL bytes, path traversal on /static, header and framing abuse, odd HTTP methods.

Each must be refused cleanly: a documented 4xx with the JSON error body (or, for what the HTTP
server itself refuses, a 4xx or a closed connection), never a 5xx or a hang. The module ends by
checking the aftermath: the workflow tables hold exactly the rows seeded before the attack, the API
still answers /readyz, counted no 5xx, and logged no unhandled exception.

tests/integration/test_api.py covers the basic bad requests; the cases here go further.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.api.app import MAX_BODY_BYTES
from services.api.routes.page import STATIC_DIR
from services.api.validation import MAX_FILTER_VALUES, idempotent_workflow_id
from services.common.names import DEMO_WORKFLOW, WORKFLOW_QUEUE
from tests.hostile import rawhttp
from tests.hostile.stacks import (
    server_error_counts,
    table_counts,
    unhandled_exceptions,
)
from tests.support import Stack, enqueue, wait_status

SEEDED_KEY = "hostile-seed-key"


@pytest.fixture(scope="module")
def seeded(stack: Stack) -> list[str]:
    """Finished workflows, so a filter or cursor that leaked would have rows to show."""
    with stack.client() as http:
        resp = http.post(
            "/api/workflows",
            json={"num_steps": 1, "step_seconds": 0},
            headers={"Idempotency-Key": SEEDED_KEY},
        )
        assert resp.status_code == 202, resp.text
        ids = [resp.json()["workflow_id"], *(enqueue(http, 1, step_seconds=0) for _ in range(2))]
        for workflow_id in ids:
            wait_status(http, workflow_id, {"SUCCESS"})
    return ids


@pytest.fixture(scope="module")
def baseline(stack: Stack, seeded: list[str]) -> dict[str, int]:
    """Rows per workflow table before any hostile request: nothing below may add one."""
    return table_counts(stack.database_url)


@pytest.fixture
def http(stack: Stack, baseline: dict[str, int]) -> Iterator[httpx.Client]:
    # No keep-alive: one refused request must not poison the connection of the next.
    limits = httpx.Limits(max_keepalive_connections=0)
    with httpx.Client(base_url=stack.base_url, timeout=10, limits=limits) as client:
        yield client


@pytest.fixture
def port(stack: Stack, baseline: dict[str, int]) -> int:
    return stack.api_port


def assert_json_error(resp: httpx.Response, *statuses: int) -> None:
    """A refusal by the app: one of `statuses`, with {"error": {"code", "message"}}."""
    assert resp.status_code in statuses, f"{resp.status_code}: {resp.text[:500]}"
    assert resp.headers["content-type"].startswith("application/json")
    error = resp.json()["error"]
    assert isinstance(error["code"], str)
    assert error["code"]
    assert isinstance(error["message"], str)
    assert error["message"]


def post_raw(http: httpx.Client, body: bytes, **headers: str) -> httpx.Response:
    return http.post(
        "/api/workflows", content=body, headers={"content-type": "application/json", **headers}
    )


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


# --- bodies ---------------------------------------------------------------------------------


def test_body_limit_is_exact(http: httpx.Client) -> None:
    """A body of exactly the limit is read (422: num_steps 0); one byte more is 413."""
    body = b'{"num_steps": 0}'
    at_limit = body + b" " * (MAX_BODY_BYTES - len(body))
    assert_json_error(post_raw(http, at_limit), 422)
    assert_json_error(post_raw(http, at_limit + b" "), 413)


def test_declared_huge_body_is_refused_without_waiting_for_it(port: int) -> None:
    headers = {"Content-Type": "application/json", "Content-Length": str(10**12)}
    # Waiting for the terabyte would hang until send() gives up (10 s) and fail the test.
    resp = rawhttp.send(port, rawhttp.request("POST", "/api/workflows", headers), timeout=10)
    assert resp.status == 413
    assert resp.elapsed < 5
    assert json.loads(resp.body)["error"]["code"] == "payload_too_large"


NESTED = {
    "arrays at the top": b"[" * 8000 + b"]" * 8000,
    "objects at the top": b'{"a":' * 2500 + b"1" + b"}" * 2500,
    "inside a valid field": b'{"num_steps": 1, "x": ' + b"[" * 6000 + b"]" * 6000 + b"}",
    "mixed": b'{"num_steps": ' + b'[{"a":' * 1500 + b"1" + b"}]" * 1500 + b"}",
    "just under the parser's recursion limit": b'{"num_steps": 1, "x": '
    + b"[" * 900
    + b"]" * 900
    + b"}",
    "unclosed": b"[" * 10000,
}


@pytest.mark.parametrize("body", NESTED.values(), ids=NESTED.keys())
def test_deeply_nested_bodies_are_refused(http: httpx.Client, body: bytes) -> None:
    assert len(body) <= MAX_BODY_BYTES
    assert_json_error(post_raw(http, body), 400, 422)


NOT_UTF8 = {
    "lone continuation byte": b'{"num_steps": 1, "x": "\x80"}',
    "overlong slash": b'{"num_steps": 1, "x": "\xc0\xaf"}',
    "encoded surrogate": b'{"num_steps": 1, "x": "\xed\xa0\x80"}',
    "truncated sequence": b'{"num_steps": 1, "x": "\xe2\x82"}',
    "latin-1": '{"num_steps": 1, "x": "caf\xe9"}'.encode("latin-1"),
    "utf-16 with BOM": '{"num_steps": 1}'.encode("utf-16"),
    "utf-32": '{"num_steps": 1}'.encode("utf-32-le"),
    "utf-8 BOM": b'\xef\xbb\xbf{"num_steps": 1}',
    "raw NUL in a string": b'{"num_steps": 1, "x": "a\x00b"}',
    "raw NUL outside strings": b'{"num_steps": 1}\x00',
}


@pytest.mark.parametrize("body", NOT_UTF8.values(), ids=NOT_UTF8.keys())
def test_bodies_that_are_not_utf8_json_are_refused(http: httpx.Client, body: bytes) -> None:
    assert_json_error(post_raw(http, body), 400)


ABSURD_FIELDS = {
    "5000-digit integer": b'{"num_steps": 1' + b"0" * 5000 + b"}",
    "huge integer": b'{"num_steps": 18446744073709551617}',
    "negative": b'{"num_steps": -1}',
    "overflowing float": b'{"num_steps": 1e400}',
    "overflowing step_seconds": b'{"num_steps": 1, "step_seconds": 1e400}',
    "negative step_seconds": b'{"num_steps": 1, "step_seconds": -1e-300}',
    "priority over int32": b'{"num_steps": 1, "priority": 2147483648}',
    "priority zero": b'{"num_steps": 1, "priority": 0}',
    "boolean": b'{"num_steps": true}',
    "string digits": b'{"num_steps": "1"}',
    "unicode digits": '{"num_steps": "\u0661"}'.encode(),
    "array": b'{"num_steps": [1]}',
    "object": b'{"num_steps": {"$gt": 0}}',
    "duplicate key, last out of range": b'{"num_steps": 1, "num_steps": 100000}',
    "lone surrogate key": b'{"num_steps": 1, "\\ud800": 1}',
    "NUL key": b'{"num_steps": 1, "\\u0000": 1}',
    "prototype pollution": b'{"num_steps": 1, "__proto__": {"admin": true}}',
}


@pytest.mark.parametrize("body", ABSURD_FIELDS.values(), ids=ABSURD_FIELDS.keys())
def test_absurd_field_values_are_refused(http: httpx.Client, body: bytes) -> None:
    assert_json_error(post_raw(http, body), 400, 422)


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity"])
def test_non_json_constants_are_refused(http: httpx.Client, constant: bytes) -> None:
    assert_json_error(post_raw(http, b'{"num_steps": 1, "step_seconds": ' + constant + b"}"), 400)


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/jsonx", "application/json, text/html", "multipart/form-data",
     "application/x-www-form-urlencoded", "json", "application/*", "*/*"],
)  # fmt: skip
def test_other_content_types_are_415(http: httpx.Client, content_type: str) -> None:
    # The body would be refused (422) if it were read: a 415 shows the type was checked first.
    resp = http.post(
        "/api/workflows", content=b'{"num_steps": 0}', headers={"content-type": content_type}
    )
    assert_json_error(resp, 415)


def test_a_body_that_never_arrives_is_not_a_server_error(stack: Stack, port: int) -> None:
    """The client announces 100 bytes, sends 12 and hangs up: nothing to answer, nothing stored,
    and not a 5xx in the API's own request count (a client must not be able to fake an outage).
    """
    before = server_error_counts(stack.base_url)
    headers = {"Content-Type": "application/json", "Content-Length": "100"}
    partial = rawhttp.request("POST", "/api/workflows", headers, b'{"num_steps"')
    resp = rawhttp.send(port, partial, half_close=True)
    assert resp.status is None or resp.status < 500
    time.sleep(0.5)  # the server finishes the request after the client is gone
    assert server_error_counts(stack.base_url) == before
    assert not [e for e in unhandled_exceptions(stack) if "ClientDisconnect" in e]


# --- list queries: limits, cursors, filters -------------------------------------------------

ABSURD_LIMITS = [
    "99999999999999999999", "-1", "+5", " 5", "5 ", "\u0665", "\uff15", "\u00b2", "1e3", "0x10",
    "1.0", "", "NaN", "5\x00", "\x00", "501", "0", "1_0",
]  # fmt: skip


@pytest.mark.parametrize("limit", ABSURD_LIMITS, ids=[repr(v) for v in ABSURD_LIMITS])
def test_absurd_limits_are_400(http: httpx.Client, limit: str) -> None:
    assert_json_error(http.get("/api/workflows", params={"limit": limit}), 400)


BAD_CURSORS = {
    "not base64": "!!!***",
    "non-ascii": "\u00e9\u00e9\u00e9\u00e9",
    "unicode digits": "\u0661\u0662\u0663\u0664",
    "standard alphabet": "+/+/+/+/",
    "base64 garbage": base64.urlsafe_b64encode(bytes(range(256))).decode(),
    "huge created_at": b64(f'[{2**64}, "x"]'),
    "5000-digit created_at": b64("[" + "9" * 5000 + ', "x"]'),
    "negative created_at": b64('[-1, "x"]'),
    "float created_at": b64('[1.5, "x"]'),
    "overflowing created_at": b64('[1e400, "x"]'),
    "boolean created_at": b64('[true, "x"]'),
    "string created_at": b64('["1", "x"]'),
    "null id": b64("[1, null]"),
    "numeric id": b64("[1, 2]"),
    "oversized id": b64(json.dumps([1, "x" * 1001])),
    "empty list": b64("[]"),
    "one element": b64("[1]"),
    "three elements": b64('[1, "x", 3]'),
    "object": b64('{"created_at": 1, "id": "x"}'),
    "two-key object": b64('{"a": 1, "b": 2}'),
    "two-char string": b64('"ab"'),
    "number": b64("12"),
    "null": b64("null"),
    "NaN": b64('[NaN, "x"]'),
    "deeply nested": b64("[" * 3000 + "]" * 3000),
    "lone surrogate id": b64('[1, "\\ud800"]'),
    "NUL in id": b64('[1, "a\\u0000b"]'),
}


@pytest.mark.parametrize("cursor", BAD_CURSORS.values(), ids=BAD_CURSORS.keys())
def test_bad_cursors_are_400(http: httpx.Client, cursor: str) -> None:
    assert_json_error(http.get("/api/workflows", params={"cursor": cursor}), 400)


SQL_STRINGS = [
    "' OR '1'='1",
    "' OR 1=1 --",
    "workflow' --",
    "x'); DROP TABLE dbos.workflow_status; --",
    'x"; DROP TABLE workflow_status; --',
    "1 UNION SELECT workflow_uuid FROM workflow_status",
    "%",
    "_",
    "workflow%",
    "\\",
    "'||(SELECT pg_sleep(20))||'",
    "$1",
    ":name",
]


@pytest.mark.parametrize("param", ["name", "queue"])
def test_sql_looking_filters_match_nothing(
    http: httpx.Client, seeded: list[str], param: str
) -> None:
    # The control: the real value finds the seeded workflows, so an empty page means "no match".
    real = DEMO_WORKFLOW if param == "name" else WORKFLOW_QUEUE
    listed = http.get("/api/workflows", params={param: real, "limit": 500}).json()
    assert set(seeded) <= {w["workflow_id"] for w in listed}
    for value in SQL_STRINGS:
        started = time.monotonic()
        resp = http.get("/api/workflows", params={param: value})
        assert resp.status_code == 200, (value, resp.text)
        assert resp.json() == [], value
        assert time.monotonic() - started < 10, f"{value!r} was slow: injected pg_sleep?"
    for value in SQL_STRINGS:
        assert_json_error(http.get("/api/workflows", params={"status": value}), 400)


def test_sql_looking_ids_and_cursors(http: httpx.Client, seeded: list[str]) -> None:
    # No row was created at this instant, so the id part of the cursor cannot change the page:
    # every id, SQL-looking or not, must give the page that a plain one gives.
    now_ms = int(time.time() * 1000) + 60_000
    plain = http.get("/api/workflows", params={"cursor": b64(json.dumps([now_ms, "x"]))})
    assert set(seeded) <= {w["workflow_id"] for w in plain.json()}
    for value in SQL_STRINGS:
        for path in ("", "/cancel", "/resume", "/steps", "/retry"):
            method = "GET" if path in ("", "/steps") else "POST"
            resp = http.request(method, f"/api/workflows/{value}{path}")
            assert_json_error(resp, 404)
        resp = http.post(f"/api/workflows/{value}/fork", json={"start_step": 1})
        assert_json_error(resp, 404)
        resp = http.post("/api/workflows/bulk/retry", json={"workflow_ids": [value]})
        assert resp.status_code == 202, resp.text
        assert resp.json()["skipped"] == [{"workflow_id": value, "reason": "no such workflow"}]
        resp = http.get("/api/dead-letter", params={"error": value, "name": value})
        assert resp.status_code == 200, resp.text
        assert resp.json() == []
        # A well-formed cursor whose id is SQL: still just a value to compare against.
        resp = http.get("/api/workflows", params={"cursor": b64(json.dumps([now_ms, value]))})
        assert resp.status_code == 200, (value, resp.text)
        assert resp.json() == plain.json(), value


NUL_PATHS = [
    ("GET", "/api/workflows/%00"),
    ("GET", "/api/workflows/a%00b"),
    ("POST", "/api/workflows/%00/cancel"),
    ("POST", "/api/workflows/%00/resume"),
    ("GET", "/api/workflows/%00/steps"),
    ("POST", "/api/workflows/%00/retry"),
]


@pytest.mark.parametrize(("method", "path"), NUL_PATHS, ids=[f"{m} {p}" for m, p in NUL_PATHS])
def test_nul_bytes_in_workflow_ids_are_not_found(
    http: httpx.Client, method: str, path: str
) -> None:
    # No workflow id can hold NUL (Postgres text cannot), so this one does not exist.
    assert_json_error(http.request(method, path), 400, 404)


@pytest.mark.parametrize("param", ["name", "queue"])
def test_nul_bytes_in_filters_match_nothing_or_are_400(http: httpx.Client, param: str) -> None:
    for value in ("\x00", "a\x00b", f"{DEMO_WORKFLOW}\x00"):
        resp = http.get("/api/workflows", params={param: value})
        if resp.status_code == 200:
            assert resp.json() == []
        else:
            assert_json_error(resp, 400)


def test_unicode_and_long_filters(http: httpx.Client) -> None:
    for value in ("\u202eworkflow", "w\u0301orkflow", "\U0001f4a5", "\ufeff", "\ud7ff"):
        resp = http.get("/api/workflows", params={"name": value})
        assert resp.status_code == 200, (value, resp.text)
        assert resp.json() == []
    many = ",".join(f"n{i}" for i in range(MAX_FILTER_VALUES + 1))
    assert_json_error(http.get("/api/workflows", params={"name": many}), 400)
    assert_json_error(http.get("/api/workflows", params={"queue": "q" * 201}), 400)
    repeated: list[tuple[str, str | int | float | bool | None]] = [("status", "SUCCESS")]
    repeated *= MAX_FILTER_VALUES + 1
    assert_json_error(http.get("/api/workflows", params=repeated), 400)


def test_huge_ids_are_not_found(http: httpx.Client) -> None:
    resp = http.get(f"/api/workflows/{'a' * 60_000}")
    assert_json_error(resp, 404, 414)


# --- /static: path traversal ----------------------------------------------------------------

TRAVERSALS = [
    "/static/../app.py",
    "/static/../../common/settings.py",
    "/static/../../../../../../../../etc/passwd",
    "/static/%2e%2e/app.py",
    "/static/%2e%2e%2fapp.py",
    "/static/..%2fapp.py",
    "/static/%2e%2e%2f%2e%2e%2fcommon%2fsettings.py",
    "/static/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/static/%252e%252e%252fapp.py",
    "/static/..%252f..%252fapp.py",
    "/static/..\\app.py",
    "/static/..%5capp.py",
    "/static/%5c..%5c..%5capp.py",
    "/static/%c0%ae%c0%ae/app.py",
    "/static/%c0%ae%c0%ae%c0%afapp.py",
    "/static/%ef%bc%8e%ef%bc%8e/app.py",
    "/static/....//app.py",
    "/static/.%2e/app.py",
    "/static/..;/app.py",
    "/static//etc/passwd",
    "/static/%2fetc%2fpasswd",
    "/static/%00",
    "/static/app.js%00.png",
    "/static/..%00/app.py",
    "/static/%2e%2e",
    "/static/.",
    "/static/",
    "/static",
    "/%2e%2e/services/api/app.py",
    "/static/app.js/..%2f..%2fapp.py",
    "/static/" + "a/" * 3000 + "x",
    "/static/" + "a" * 5000,
]

# Text of files outside the static directory that a traversal would reach.
SECRETS = (b"def create_app", b"root:x:0:0", b"load_settings", b"[project]")


def test_traversal_targets_exist() -> None:
    """The files the traversals aim at are really there, so a 404 means "refused"."""
    assert (STATIC_DIR / "app.js").is_file()
    assert (STATIC_DIR.parent / "app.py").is_file()
    assert Path("/etc/passwd").is_file()


@pytest.mark.parametrize("target", TRAVERSALS)
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_static_path_traversal_is_refused(port: int, target: str, method: str) -> None:
    resp = rawhttp.send(port, rawhttp.request(method, target))
    assert resp.status is not None, "connection closed without an answer"
    assert resp.status < 500, (resp.status, resp.body[:300])
    assert not any(secret in resp.body for secret in SECRETS)
    if resp.status == 200:
        # Only ever a real file from the static directory (or the page itself, for "/static/").
        served = {p.read_bytes() for p in STATIC_DIR.iterdir() if p.is_file()}
        assert method == "HEAD" or resp.body in served


def test_static_files_still_served(http: httpx.Client) -> None:
    resp = http.get("/static/app.js")
    assert resp.status_code == 200
    assert resp.content == (STATIC_DIR / "app.js").read_bytes()


@pytest.mark.parametrize(
    "range_header",
    ["bytes=" + ",".join(f"{i}-{i}" for i in range(1000)), "bytes=99999999-", "bytes=-",
     "bytes=5-1", "bytes=0-99999999999999999999999999", "items=0-1", "bytes=--1", "bytes=\xff",
     "bytes=0-0,-1", "bytes=-0"],
)  # fmt: skip
def test_range_header_abuse_on_static_files(port: int, range_header: str) -> None:
    headers = {"Range": range_header.encode("latin-1"), "If-Range": b"\xff\xfe"}
    resp = rawhttp.send(port, rawhttp.request("GET", "/static/app.js", headers))
    assert resp.status is not None
    assert resp.status in {200, 206, 400, 416}, (resp.status, resp.body[:300])


# --- headers and framing --------------------------------------------------------------------

BAD_KEYS: list[bytes] = [
    b"",
    b"k" * 201,
    b"a\x7fb",
    b"caf\xe9",
    b"\xff\xfe",
    b"tab\tinside",
]


@pytest.mark.parametrize("key", BAD_KEYS, ids=[repr(k[:20]) for k in BAD_KEYS])
def test_bad_idempotency_keys_are_400_even_with_a_valid_body(port: int, key: bytes) -> None:
    body = b'{"num_steps": 1, "step_seconds": 0}'
    headers: dict[str, bytes | str] = {"Content-Type": "application/json", "Idempotency-Key": key}
    resp = rawhttp.send(port, rawhttp.request("POST", "/api/workflows", headers, body))
    assert resp.status == 400, (resp.status, resp.body[:300])


def test_many_idempotency_keys_never_make_a_new_workflow(
    port: int, stack: Stack, seeded: list[str]
) -> None:
    """The seeded key first, then 50 others: refused, or a replay of the seeded workflow."""
    body = b'{"num_steps": 1, "step_seconds": 0}'
    lines = [b"Idempotency-Key: " + SEEDED_KEY.encode()]
    lines += [b"Idempotency-Key: other-%d" % i for i in range(50)]
    head = (
        b"POST /api/workflows HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
    )
    resp = rawhttp.send(port, head + b"\r\n".join(lines) + b"\r\n\r\n" + body)
    assert resp.status in {202, 400}, (resp.status, resp.body[:300])
    if resp.status == 202:
        assert json.loads(resp.body)["workflow_id"] == idempotent_workflow_id(SEEDED_KEY)
        assert resp.headers.get("idempotent-replayed") == "true"


FRAMING = {
    "giant header": rawhttp.request("GET", "/healthz", {"X-Big": "a" * 200_000}),
    "many headers": rawhttp.request("GET", "/healthz", {f"X-H{i}": "v" for i in range(3000)}),
    "giant cookie": rawhttp.request("GET", "/api/queues", {"Cookie": "c=" + "x" * 100_000}),
    "no Host": b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n",
    "two Hosts": b"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n",
    "NUL in header": rawhttp.request("GET", "/healthz", {"X-A": b"a\x00b"}),
    "CR in header": rawhttp.request("GET", "/healthz", {"X-A": b"a\rb"}),
    "obs-fold": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\r\n folded\r\n\r\n",
    "space before colon": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A : a\r\n\r\n",
    "HTTP/0.9": b"GET /healthz\r\n\r\n",
    "HTTP/2.0 line": b"GET /healthz HTTP/2.0\r\nHost: x\r\nConnection: close\r\n\r\n",
    "garbage line": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
    "absolute form": rawhttp.request("GET", "http://evil.example/api/queues"),
    "asterisk form": rawhttp.request("OPTIONS", "*"),
    "CONNECT": rawhttp.request("CONNECT", "127.0.0.1:5432"),
}


@pytest.mark.parametrize("raw", FRAMING.values(), ids=FRAMING.keys())
def test_malformed_requests_are_refused_cleanly(port: int, raw: bytes) -> None:
    resp = rawhttp.send(port, raw)
    assert resp.status is None or resp.status < 500, (resp.status, resp.body[:300])


VALID_BODY = b'{"num_steps": 1, "step_seconds": 0}'
ARABIC_INDIC_DIGITS = str.maketrans(
    "0123456789", "\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669"
)
BAD_LENGTHS = {
    "letters": b"abc",
    "negative": b"-16",
    "plus sign": b"+" + str(len(VALID_BODY)).encode(),
    # (A list of equal values is valid HTTP, and h11 accepts it: not in this list.)
    "differing list": b"%d, 5" % len(VALID_BODY),
    "hex": hex(len(VALID_BODY)).encode(),
    "unicode digits": str(len(VALID_BODY)).translate(ARABIC_INDIC_DIGITS).encode(),
    "too short": b"5",
}  # fmt: skip


@pytest.mark.parametrize("length", BAD_LENGTHS.values(), ids=BAD_LENGTHS.keys())
def test_bad_content_lengths_store_nothing(port: int, length: bytes) -> None:
    headers: dict[str, bytes | str] = {"Content-Type": "application/json", "Content-Length": length}
    resp = rawhttp.send(port, rawhttp.request("POST", "/api/workflows", headers, VALID_BODY))
    assert resp.status is None or 400 <= resp.status < 500, (resp.status, resp.body[:300])


def test_request_smuggling_is_refused(port: int) -> None:
    """Content-Length and chunked together, a second enqueue hidden in the body: never run."""
    smuggled = (
        b"0\r\n\r\nPOST /api/workflows HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % len(VALID_BODY) + VALID_BODY
    )
    for te in (b"chunked", b" chunked", b"chunked, identity", b"gzip, chunked", b"CHUNKED"):
        headers = {
            "Content-Type": "application/json",
            "Content-Length": str(len(smuggled)),
            "Transfer-Encoding": te,
        }
        resp = rawhttp.send(port, rawhttp.request("POST", "/api/workflows", headers, smuggled))
        assert resp.status is None or 400 <= resp.status < 500, (te, resp.status, resp.body[:300])


def test_hostile_host_and_forwarded_headers_do_not_reach_links(http: httpx.Client) -> None:
    headers = {
        "Host": "evil.example",
        "X-Forwarded-Host": "evil.example",
        "X-Forwarded-Proto": "javascript",
        "X-Forwarded-For": ",,,' OR 1=1 --",
        "X-Forwarded-Prefix": "/../../admin",
    }
    resp = http.get("/api/workflows", params={"limit": 1}, headers=headers)
    assert resp.status_code == 200
    assert resp.headers["link"].startswith("</api/workflows?")
    resp = http.post("/api/workflows", json={"num_steps": 0}, headers=headers)
    assert_json_error(resp, 422)


# --- methods --------------------------------------------------------------------------------

ROUTES = {
    "/api/workflows": {"GET", "POST"},
    "/api/workflows/x": {"GET"},
    "/api/workflows/x/cancel": {"POST"},
    "/api/workflows/x/resume": {"POST"},
    "/api/workflows/x/steps": {"GET"},
    "/api/workflows/x/retry": {"POST"},
    "/api/workflows/x/fork": {"POST"},
    "/api/workflows/bulk/retry": {"POST"},
    "/api/workflows/bulk/cancel": {"POST"},
    "/api/dead-letter": {"GET"},
    "/api/queues": {"GET"},
    "/healthz": {"GET"},
    "/readyz": {"GET"},
    "/metrics": {"GET"},
    "/openapi.json": {"GET"},
    "/": {"GET"},
}


@pytest.mark.parametrize("path", ROUTES)
def test_unsupported_methods_are_405_with_the_right_allow(http: httpx.Client, path: str) -> None:
    for method in ("PUT", "PATCH", "DELETE", "TRACE", "OPTIONS", "PROPFIND", "X" * 100):
        if method in ROUTES[path]:
            continue
        resp = http.request(method, path)
        if method == "X" * 100:
            # uvicorn's httptools parser refuses a method no HTTP spec defines before the app
            # sees it: a plain 400, which is a clean refusal too (h11 would let it reach the app).
            assert resp.status_code in (400, 405), resp.status_code
            continue
        assert_json_error(resp, 405)
        allowed = {m.strip() for m in resp.headers["allow"].split(",")} - {"HEAD", "OPTIONS"}
        assert allowed == ROUTES[path], f"{method} {path}: Allow: {resp.headers['allow']}"


def test_head_is_get_without_a_body(http: httpx.Client) -> None:
    for path in ("/healthz", "/api/queues", "/api/workflows", "/static/app.js", "/"):
        resp = http.head(path)
        assert resp.status_code == 200, path
        assert resp.content == b""


# --- the aftermath (keep these last: they read what every test above left behind) -----------


def test_database_holds_only_the_seeded_rows(stack: Stack, baseline: dict[str, int]) -> None:
    assert table_counts(stack.database_url) == baseline


def test_api_and_worker_still_ready(stack: Stack, http: httpx.Client) -> None:
    assert http.get("/readyz").status_code == 200
    assert stack.api is not None
    assert stack.api.proc.poll() is None
    worker = httpx.get(f"http://127.0.0.1:{stack.worker_ports[0]}/readyz", timeout=10)
    assert worker.status_code == 200
    # It still does its job after all that.
    workflow_id = enqueue(http, 1, step_seconds=0)
    done: dict[str, Any] = wait_status(http, workflow_id, {"SUCCESS", "ERROR"})
    assert done["workflow_status"] == "SUCCESS"


def test_api_counted_no_server_error(stack: Stack, baseline: dict[str, int]) -> None:
    assert server_error_counts(stack.base_url) == {}
    assert unhandled_exceptions(stack) == []
