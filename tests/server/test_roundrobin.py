"""The tests' round-robin proxy on its own: connections go to the backends in turn, bytes pass
both ways untouched, a backend that refuses is skipped, and the proxy stops by itself."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from tests.server.roundrobin import RoundRobin


class _Named(socketserver.BaseRequestHandler):
    """Answers its server's name, then echoes whatever comes."""

    def handle(self) -> None:
        self.request.sendall(self.server.name)  # type: ignore[attr-defined]
        while data := self.request.recv(65536):
            self.request.sendall(data)


@contextmanager
def _backend(name: bytes) -> Iterator[socketserver.ThreadingTCPServer]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Named)
    server.daemon_threads = True
    server.name = name  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _ask(port: int, payload: bytes = b"") -> tuple[bytes, bytes]:
    """The backend's name, and the echo of ``payload``."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        name = s.recv(1)  # every backend's name is one letter
        echoed = b""
        if payload:
            s.sendall(payload)
            while len(echoed) < len(payload):
                echoed += s.recv(65536)
        return name, echoed


def test_connections_go_to_the_backends_in_turn_and_skip_one_that_refuses() -> None:
    with _backend(b"A") as a, _backend(b"B") as b:
        ports = [a.server_address[1], b.server_address[1]]
        with RoundRobin(ports) as proxy:
            names = [_ask(proxy.port)[0] for _ in range(4)]
            assert names == [b"A", b"B", b"A", b"B"]
            big = bytes(range(256)) * 4096  # 1 MiB, both ways unchanged
            assert _ask(proxy.port, big)[1] == big
            assert proxy.served == {ports[0]: 3, ports[1]: 2}
            b.shutdown()
            b.server_close()  # B refuses from now on
            assert [_ask(proxy.port)[0] for _ in range(3)] == [b"A", b"A", b"A"]


def test_the_proxy_stops_by_itself_after_its_lifetime() -> None:
    with _backend(b"A") as a:
        proxy = RoundRobin([a.server_address[1]], lifetime_s=0.5)
        with proxy:
            assert _ask(proxy.port)[0] == b"A"
            time.sleep(1.0)
            try:
                socket.create_connection(("127.0.0.1", proxy.port), timeout=2).close()
                refused = False
            except OSError:
                refused = True
            assert refused
