"""A round-robin TCP proxy on loopback, for the tests and the server benchmark: several
``scorer server`` instances behind one address, as a reading centre's load balancer puts them.

Each accepted connection goes whole to the next backend in turn (TLS passes through untouched:
the bytes are copied, never read, so the clients see the servers' own certificate). A backend
that refuses the connection (stopped, killed) is skipped for the next one, as a load balancer's
health check would; a connection already open to a backend that dies is closed, and the client
sends its request again on a new one. Bounded: loopback only, at most ``max_connections`` at
once (more are closed at once), and it stops by itself after ``lifetime_s``.

In a test, ``with RoundRobin([port1, port2]) as proxy:`` serves on ``proxy.port`` from a thread
of its own. As a process (the benchmark, so that its copying is not the clients' own CPU):
``python -m tests.server.roundrobin PORT1 PORT2 ...`` prints ``listening on PORT`` and runs
until SIGTERM or its lifetime.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import threading
from collections import Counter
from types import TracebackType

LOOPBACK = "127.0.0.1"
CHUNK = 64 * 1024
CONNECT_TIMEOUT_S = 5.0


class RoundRobin:
    """The proxy: ``backends`` are ports on 127.0.0.1; ``port`` is where it listens (0: a
    free one, known once started); ``served`` counts the connections each backend took."""

    def __init__(
        self,
        backends: list[int],
        port: int = 0,
        lifetime_s: float = 900.0,
        max_connections: int = 512,
    ) -> None:
        if not backends:
            raise ValueError("a round-robin proxy needs at least one backend port")
        self.backends = list(backends)
        self.port = port
        self.lifetime_s = lifetime_s
        self.max_connections = max_connections
        self.served: Counter[int] = Counter()
        self.refused = 0
        self._turn = 0
        self._open = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    # ------------------------------------------------------------- serving

    async def serve(self, listening: threading.Event | None = None) -> None:
        """Serve until :meth:`stop` or the lifetime is over."""
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        server = await asyncio.start_server(self._connection, LOOPBACK, self.port)
        self.port = int(server.sockets[0].getsockname()[1])
        if listening is not None:
            listening.set()
        async with server:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), self.lifetime_s)
        # Leaving closes the listener; the connections still open are cancelled with the loop.

    async def _connection(
        self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter
    ) -> None:
        if self._open >= self.max_connections:
            self.refused += 1
            client_w.close()
            return
        self._open += 1
        try:
            upstream = await self._connect()
            if upstream is None:
                self.refused += 1
                return
            up_r, up_w = upstream
            copies = [
                asyncio.ensure_future(_copy(client_r, up_w)),
                asyncio.ensure_future(_copy(up_r, client_w)),
            ]
            # Either side's end ends the connection (an HTTP connection has nothing to say
            # once one side has closed).
            await asyncio.wait(copies, return_when=asyncio.FIRST_COMPLETED)
            for c in copies:
                c.cancel()
            up_w.close()
        finally:
            self._open -= 1
            client_w.close()

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        """A connection to the next backend in turn that accepts one; None when none does."""
        for _ in range(len(self.backends)):
            port = self.backends[self._turn % len(self.backends)]
            self._turn += 1
            try:
                connected = await asyncio.wait_for(
                    asyncio.open_connection(LOOPBACK, port), CONNECT_TIMEOUT_S
                )
            except (OSError, TimeoutError):
                continue
            self.served[port] += 1
            return connected
        return None

    # ------------------------------------------------------------- in a thread

    def __enter__(self) -> RoundRobin:
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self.serve(self._ready)), name="round-robin", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the round-robin proxy did not start listening within 10 s")
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        self.stop()
        if self._thread is not None:
            self._thread.join(10)

    def stop(self) -> None:
        """Stop serving (from any thread)."""
        loop, stopped = self._loop, self._stopped
        if loop is not None and stopped is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop has just ended by itself
                loop.call_soon_threadsafe(stopped.set)


async def _copy(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while data := await source.read(CHUNK):
            sink.write(data)
            await sink.drain()


def main() -> int:
    ap = argparse.ArgumentParser(description="a round-robin TCP proxy on 127.0.0.1")
    ap.add_argument("backends", nargs="+", type=int, metavar="PORT")
    ap.add_argument("--port", type=int, default=0, help="where to listen (0: a free port)")
    ap.add_argument("--lifetime", type=float, default=900.0, help="stop after this many s")
    args = ap.parse_args()
    proxy = RoundRobin(args.backends, args.port, args.lifetime)

    async def run() -> None:
        listening = threading.Event()
        task = asyncio.ensure_future(proxy.serve(listening))
        while not listening.is_set() and not task.done():
            await asyncio.sleep(0.01)
        print(f"listening on {proxy.port}", flush=True)
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, proxy.stop)
        await task

    asyncio.run(run())
    print(f"served {dict(proxy.served)}, refused {proxy.refused}", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
