"""``toolgrad sim serve`` as a hostile user meets it, over real uvicorn on 127.0.0.1: bad flags,
a busy port, credentials, the closed control plane, slow clients, HEAD, the access log (each
test names the bad input it sends)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from simulator.sandboxes.http import HTTPSandbox

pytestmark = pytest.mark.timeout(180)
TOOLGRAD = Path(sys.executable).with_name("toolgrad")
ADMIN = "x-sim-admin-token"


def serve_once(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(TOOLGRAD), "sim", "serve", *args], capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("args", [
    ("petstore", "--port", "99999"),  # bad input: no such port
    ("petstore", "--port", "-1"),
    ("petstore", "--auth", "bogus"),  # bad input: no such auth mode
    ("petstore", "--auth", "enforce"),  # bad input: enforce with nothing to check against
    ("petstore", "--auth", "enforce", "--credential", "nope=x"),  # bad input: no such security scheme
    ("petstore", "--credential", "api_key"),  # bad input: no value
    ("/dev/zero",),  # bad input: a device as the spec
])
def test_bad_flags_are_one_line_and_exit_2(args: tuple[str, ...]) -> None:
    result = serve_once(*args)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "serving" not in result.stderr


def test_a_busy_port_is_an_error_before_serving_is_printed() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = serve_once("petstore", "--port", str(port))  # bad input: a port already taken
    assert result.returncode == 2
    assert "already in use" in result.stderr and "serving" not in result.stderr and "Traceback" not in result.stderr


def test_real_authentication_over_http(server_factory: Callable[..., Any]) -> None:
    served = server_factory("petstore", extra=("--auth", "enforce", "--credential", "api_key=good-key",
                                               "--credential", "petstore_auth=good-token", "--admin-token", "root"))
    with httpx.Client(base_url=served.origin, timeout=10) as client:
        # bad input: none, a bearer without a token ("Bearer " arrives stripped of its space), a wrong
        # token, an empty key, a wrong key
        for headers in ({}, {"authorization": "Bearer"}, {"authorization": "bEaReR x"}, {"api_key": ""},
                        {"api_key": "wrong"}):
            denied = client.get("/api/v3/pet/1", headers=headers)
            assert denied.status_code == 401 and "Bearer" in denied.headers["www-authenticate"], headers
        assert client.get("/api/v3/pet/1", headers={"api_key": "good-key"}).status_code == 200
        assert client.get("/api/v3/pet/1", headers={"authorization": "bEaReR good-token"}).status_code == 200
        # auth enforced: the control plane is closed
        assert client.get("/_sim/state").status_code == 401
        assert client.get("/_sim/state", headers={ADMIN: "root"}).status_code == 200
        assert client.get("/_sim/health").status_code == 200


def test_control_plane_over_http_is_closed_to_foreign_sites(server_factory: Callable[..., Any]) -> None:
    served = server_factory("petstore")
    with httpx.Client(base_url=served.origin, timeout=10) as client:
        client.post("/api/v3/pet", json={"name": "Kept", "photoUrls": []}, headers={"x-sim-session": "victim"})
        before = client.get("/_sim/state", headers={"x-sim-session": "victim"}).json()["hash"]
        # bad input: what a web page the user opens could send: text/plain from a foreign origin
        forged = client.post("/_sim/reset", content=b"{}", headers={
            "x-sim-session": "victim", "content-type": "text/plain", "origin": "https://evil.example"})
        assert forged.status_code in (403, 415)
        assert client.get("/_sim/state", headers={"x-sim-session": "victim"}).json()["hash"] == before


def test_http_sandbox_uses_the_admin_token(server_factory: Callable[..., Any]) -> None:
    served = server_factory("petstore", extra=("--admin-token", "tok"))
    assert httpx.get(served.origin + "/_sim/state").status_code == 401  # bad input: no token
    sandbox = HTTPSandbox(served.origin, "petstore", admin_token="tok")
    try:
        snap = sandbox.snapshot("t")
        sandbox.reset("t")
        sandbox.restore(snap, "t")
        assert sandbox.state_hash("t") == snap and sandbox.journal("t") == []
    finally:
        sandbox.close()


def test_a_slow_client_is_disconnected(server_factory: Callable[..., Any]) -> None:
    served = server_factory("petstore", environ={"TOOLGRAD_SIM_HEAD_TIMEOUT_S": "1"})
    with socket.create_connection(("127.0.0.1", served.port), timeout=10) as conn:
        conn.sendall(b"GET /api/v3/pet/1 HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        started = time.monotonic()
        closed = False
        while time.monotonic() - started < 8:  # bad input: a header trickled a byte at a time
            try:
                conn.sendall(b"X")
                time.sleep(0.2)
                if conn.recv(1, socket.MSG_DONTWAIT | socket.MSG_PEEK) == b"":
                    closed = True
                    break
            except BlockingIOError:
                continue
            except OSError:
                closed = True
                break
        assert closed, "the server kept a trickling connection open"
    with httpx.Client(base_url=served.origin, timeout=10) as client:
        assert client.get("/api/v3/pet/1").status_code == 200, "other clients are served meanwhile"


def test_head_and_huge_ids_over_http(server_factory: Callable[..., Any]) -> None:
    served = server_factory("petstore")
    with httpx.Client(base_url=served.origin, timeout=10) as client:
        get, head = client.get("/api/v3/pet/1"), client.head("/api/v3/pet/1")
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-length"] == str(len(get.content))
        for method in ("GET", "DELETE"):
            response = client.request(method, "/api/v3/pet/" + "9" * 5000)  # bad input: a 5,000-digit id
            assert 400 <= response.status_code < 500, response.text[:200]


def test_access_log_has_one_line_per_request(server_factory: Callable[..., Any]) -> None:
    served = server_factory("petstore", extra=("--access-log",))
    with httpx.Client(base_url=served.origin, timeout=10) as client:
        client.get("/api/v3/pet/1", headers={"x-sim-session": "logged"})
        client.get("/api/v3/pet/999", headers={"x-sim-session": "logged"})
    time.sleep(0.3)
    lines = [line for line in served.log.read_text().splitlines() if line.startswith("session=logged")]
    assert len(lines) == 2
    session, method, path, status, ms = lines[1].split(" ")
    assert (session, method, path, status) == ("session=logged", "GET", "/api/v3/pet/999", "404")
    assert ms.endswith("ms") and float(ms[:-2]) >= 0


def _responses(stream: bytes, methods: list[str]) -> list[tuple[int, dict[str, str], bytes]]:
    """The raw HTTP/1.1 responses in ``stream``, in order (``100 Continue`` ones skipped)."""
    out: list[tuple[int, dict[str, str], bytes]] = []
    while stream:
        head, _, rest = stream.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ")[1])
        if status == 100:
            stream = rest
            continue
        headers = dict(line.split(": ", 1) for line in lines)
        size = 0 if methods[len(out)] == "HEAD" else int(headers["content-length"])
        out.append((status, headers, rest[:size]))
        stream = rest[size:]
    return out


def test_pipelined_requests_get_the_in_process_bytes(server_factory: Callable[..., Any]) -> None:
    """Each response goes out as one write (head held until its body): pipelined requests,
    HEAD (no body write), ``Expect: 100-continue`` and a chunked body still get every byte the
    in-process simulator gives, in order."""
    from simulator.environments.environment import load_environment
    from simulator.messages import SimRequest
    from simulator.service.simulator import Simulator

    served = server_factory("petstore")
    pet = b'{"name":"held","photoUrls":[]}'
    session = b"x-sim-session: pipelined\r\n"
    raw = (b"HEAD /api/v3/pet/1 HTTP/1.1\r\nHost: x\r\n" + session + b"\r\n"
           b"GET /api/v3/pet/1 HTTP/1.1\r\nHost: x\r\n" + session + b"\r\n"
           b"POST /api/v3/pet HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + session
           + b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n%s" % (len(pet), pet)
           + b"POST /api/v3/pet HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + session
           + b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(pet), pet)
           + b"DELETE /api/v3/pet/2 HTTP/1.1\r\nHost: x\r\n" + session + b"\r\n"
           b"GET /api/v3/nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + session + b"\r\n")
    methods = ["HEAD", "GET", "POST", "POST", "DELETE", "GET"]
    with socket.create_connection(("127.0.0.1", served.port), timeout=10) as conn:
        conn.sendall(raw)
        stream = b""
        while chunk := conn.recv(65536):
            stream += chunk
    got = _responses(stream, methods)
    sim = Simulator(load_environment("petstore"))
    json_headers = (("content-type", "application/json"),)
    requests = [SimRequest("GET", "/api/v3/pet/1", (), (), b""), SimRequest("GET", "/api/v3/pet/1", (), (), b""),
                SimRequest("POST", "/api/v3/pet", (), json_headers, pet),
                SimRequest("POST", "/api/v3/pet", (), json_headers, pet),
                SimRequest("DELETE", "/api/v3/pet/2", (), (), b""), SimRequest("GET", "/api/v3/nowhere", (), (), b"")]
    expected = [sim.handle(r, "pipelined") for r in requests]
    assert [status for status, _, _ in got] == [r.status for r in expected] == [200, 200, 200, 200, 200, 404]
    assert got[0][2] == b"" and got[0][1]["content-length"] == str(len(expected[0].body))  # HEAD: GET's length
    for (_, headers, body), want in zip(got[1:], expected[1:], strict=True):
        assert body == want.body
        assert headers.get("content-type") == dict(want.headers).get("content-type")
