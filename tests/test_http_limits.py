"""The HTTP server's limits, over real sockets: a huge header, a request that never finishes,
an idle connection and too many connections are each cut off, and others are served meanwhile."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from bridge.http_limits import LimitedHttpToolsProtocol
from tests.fake_upstream import unused_port
from tests.local_server import serve_command

HEAD = b"GET / HTTP/1.1\r\nHost: test\r\n"


class QuickLimits(LimitedHttpToolsProtocol):
    """The real protocol with a deadline short enough for a test to wait out."""

    request_seconds = 0.5
    max_connections = 8


class App:
    """GET: "ok". POST: reads the body and answers its length; notes a client that left."""

    def __init__(self) -> None:
        self.disconnected = threading.Event()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["method"] == "POST":
            size = 0
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    self.disconnected.set()
                    return
                size += len(message.get("body", b""))
                if not message.get("more_body"):
                    break
            body = str(size).encode()
        else:
            body = b"ok"
        headers = [(b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class Server:
    def __init__(self) -> None:
        self.app = App()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(
            self.app, log_config=None, access_log=False, lifespan="off", http=QuickLimits
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]})

    def connect(self) -> socket.socket:
        client = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        return client


@pytest.fixture
def server() -> Iterator[Server]:
    running = Server()
    running.thread.start()
    deadline = time.monotonic() + 15
    while not running.server.started:
        assert time.monotonic() < deadline, "the server did not start"
        running.thread.join(0.01)
    yield running
    running.server.should_exit = True
    running.thread.join(15)
    running.sock.close()


def read_all(client: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    chunks = []
    while chunk := client.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def read_response(client: socket.socket) -> bytes:
    """One response on a kept-alive connection: its head and its Content-Length of body."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += client.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    while len(body) < length:
        body += client.recv(65536)
    return head + b"\r\n\r\n" + body


def get(server: Server) -> bytes:
    with server.connect() as client:
        client.sendall(HEAD + b"Connection: close\r\n\r\n")
        return read_all(client)


def test_a_huge_header_is_refused_with_431_and_a_close(server: Server) -> None:
    with server.connect() as client:
        client.sendall(HEAD + b"X-Big: ")
        sent = 0
        try:
            while sent < 200 * 1024 * 1024:  # the server hangs up long before this
                client.sendall(b"a" * 65536)
                sent += 65536
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = client.recv(65536)
    assert answer.startswith(b"HTTP/1.1 431 ")
    assert b"request headers larger than 32768 bytes" in answer
    # What the kernel's socket buffers took before the close, not what the server kept.
    assert sent < 32 * 1024 * 1024
    assert get(server).endswith(b"ok")


def test_a_half_sent_request_is_closed_after_the_deadline_and_others_are_served(
    server: Server,
) -> None:
    with server.connect() as stalled:
        stalled.sendall(HEAD)  # the blank line that ends the headers never comes
        assert get(server).endswith(b"ok")  # served while the other one waits
        answer = read_all(stalled)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert answer.endswith(b"the request did not arrive within 0.5 s")


def test_a_connection_that_sends_nothing_is_closed_after_the_deadline(server: Server) -> None:
    with server.connect() as idle:
        assert read_all(idle).startswith(b"HTTP/1.1 408 ")


def test_a_half_sent_body_ends_the_apps_wait_as_a_disconnect(server: Server) -> None:
    with server.connect() as client:
        client.sendall(b"POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\n\r\n" + b"x" * 10)
        assert read_all(client) == b""  # no answer: the app had started; only a close
    assert server.app.disconnected.wait(10)


def test_whole_requests_on_a_kept_alive_connection_are_served(server: Server) -> None:
    with server.connect() as client:
        client.sendall(HEAD + b"\r\n")
        first = read_response(client)
        client.sendall(b"POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\n\r\nhello")
        second = read_response(client)
    assert first.startswith(b"HTTP/1.1 200 ") and first.endswith(b"ok")
    assert second.startswith(b"HTTP/1.1 200 ") and second.endswith(b"\r\n\r\n5")


def test_connections_past_the_limit_are_refused_at_once(server: Server) -> None:
    held = [server.connect() for _ in range(QuickLimits.max_connections)]
    try:
        for client in held:  # each one is open on the server's side before the next
            client.sendall(b"GET")
        with server.connect() as extra:
            answer = read_all(extra)
    finally:
        for client in held:
            client.close()
    assert answer.startswith(b"HTTP/1.1 503 ")
    assert b"retry-after: 5" in answer


def connect_when_listening(port: int) -> socket.socket:
    deadline = time.monotonic() + 15
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=10)
        except ConnectionRefusedError:
            assert time.monotonic() < deadline, "serve never listened"
            time.sleep(0.05)  # a process starting up, not a timing under test


def test_paperbridge_serve_runs_with_these_limits(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        f'[sources.hf]\nbase_url = "http://127.0.0.1:{unused_port()}"\n[fetch]\nmax_attempts = 1\n'
    )
    port = unused_port()
    proc = subprocess.Popen(
        serve_command(config, port),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if "Started server process" in line:  # uvicorn listens right after this line
                break
        with connect_when_listening(port) as client:
            client.sendall(HEAD + b"X-Big: " + b"a" * (64 * 1024) + b"\r\n\r\n")
            answer = read_all(client)
    finally:
        proc.terminate()
        proc.communicate(timeout=15)
    assert answer.startswith(b"HTTP/1.1 431 ")


def test_headers_up_to_the_limit_are_served_in_one_piece_or_many(server: Server) -> None:
    big = HEAD + b"X-Big: " + b"a" * (31 * 1024) + b"\r\nConnection: close\r\n\r\n"
    with server.connect() as whole:
        whole.sendall(big)
        assert read_all(whole).endswith(b"ok")
    with server.connect() as pieces:
        for start in range(0, len(big), 1000):
            pieces.sendall(big[start : start + 1000])
        assert read_all(pieces).endswith(b"ok")


def test_the_next_request_on_a_kept_alive_connection_has_its_own_deadline(
    server: Server,
) -> None:
    with server.connect() as client:
        client.sendall(HEAD + b"\r\n")
        assert read_response(client).endswith(b"ok")
        client.sendall(HEAD)  # the second request never finishes
        answer = read_all(client)
    assert answer.startswith(b"HTTP/1.1 408 ")


def test_a_request_begun_in_the_same_read_as_a_whole_one_has_its_deadline(
    server: Server,
) -> None:
    with server.connect() as client:
        # One read: a whole request, then the start of one whose headers never end.
        client.sendall(HEAD + b"\r\n" + HEAD)
        assert read_response(client).endswith(b"ok")
        answer = read_all(client)
    assert answer.startswith(b"HTTP/1.1 408 ")


def test_bytes_that_begin_no_request_still_run_against_the_deadline(server: Server) -> None:
    with server.connect() as client:
        client.sendall(HEAD + b"\r\n")
        assert read_response(client).endswith(b"ok")
        # The parser skips blank lines between requests; a client trickling them is still
        # a request that has not arrived (each read also stops uvicorn's keep-alive timer).
        client.settimeout(0.1)
        answer = b""
        deadline = time.monotonic() + 10
        while not answer and time.monotonic() < deadline:
            try:
                client.sendall(b"\r\n")
                answer = client.recv(65536)
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
    assert answer.startswith(b"HTTP/1.1 408 ")
