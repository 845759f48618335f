"""Bytes on a socket, for requests no well-behaved client library will send: request targets with
`..` left in, malformed or conflicting framing headers, bodies that never arrive."""

from __future__ import annotations

import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass
class RawResponse:
    status: int | None  # None: the server closed or reset the connection without answering
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    elapsed: float = 0.0


def _parse(data: bytes) -> RawResponse:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    if not lines[0].startswith("HTTP/"):
        return RawResponse(status=None, body=data)
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return RawResponse(status=int(lines[0].split()[1]), headers=headers, body=body)


def send(
    port: int, request: bytes, *, timeout: float = 5.0, half_close: bool = False
) -> RawResponse:
    """Send `request` as is to 127.0.0.1:port and read one response (or until the peer closes).

    Fails the test if nothing happens within `timeout`: a hang is a bug too.
    """
    started = time.monotonic()
    data = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(request)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused mid-send (e.g. a giant header): read what it said, if anything
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            except TimeoutError:
                raise AssertionError(
                    f"no complete answer within {timeout}s; got {data[:300]!r}"
                ) from None
            if not chunk:
                break
            data += chunk
            if _complete(data):
                break
    response = _parse(data) if data else RawResponse(status=None)
    response.elapsed = time.monotonic() - started
    return response


def _complete(data: bytes) -> bool:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value.strip())
    return False  # no length: read until the server closes


def request(
    method: str,
    target: bytes | str,
    headers: Mapping[str, bytes | str] | None = None,
    body: bytes = b"",
) -> bytes:
    """One HTTP/1.1 request, Host included, exactly as given (nothing normalised or encoded)."""
    if isinstance(target, str):
        target = target.encode("latin-1")
    lines = [method.encode("latin-1") + b" " + target + b" HTTP/1.1", b"Host: 127.0.0.1"]
    for name, value in (headers or {}).items():
        raw = value if isinstance(value, bytes) else value.encode("latin-1")
        lines.append(name.encode("latin-1") + b": " + raw)
    if body and not any(
        n.lower() in {"content-length", "transfer-encoding"} for n in headers or {}
    ):
        lines.append(b"Content-Length: " + str(len(body)).encode())
    lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + body
