"""``flagledger serve`` (the HTTP API and staff console), ``flagledger openapi``, and the API thread that
``flagledger node --serve-port`` runs beside its loop."""

from __future__ import annotations

import contextlib
import errno
import signal
import socket
import sys
from collections.abc import Iterator
from typing import Any

from ledger.capacity import Capacity
from ledger.cli.base import command, data_dir, node, out
from ledger.cli.parsing import WHOLE, option
from ledger.errors import ConfigurationError, FlagLedgerError
from ledger.runtime.config import NodeConfig


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``, or ConfigurationError (exit 7) saying why not, before anything
    claims to serve: uvicorn binding the port itself would report a busy port only after our "serving" line."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as exc:
        raise ConfigurationError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # not for a port another server listens on
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        busy = " (another process is listening there; pick another --port)" if exc.errno == errno.EADDRINUSE else ""
        raise ConfigurationError(f"cannot listen on {host}:{port}: {exc.strerror or exc}{busy}") from exc
    sock.set_inheritable(True)
    return sock


def _uvicorn_config(node: Any, capacity: Capacity, app: Any = None, **kwargs: Any) -> Any:
    """``app``: another ASGI app than the agency's API (the portal role's, ``ledger.api.portal``)."""
    import uvicorn

    from ledger.api import create_app
    from ledger.api.settings import HttpSettings

    return uvicorn.Config(
        app if app is not None else create_app(node, capacity.api_concurrency),
        lifespan="off",
        # SIGTERM: stop accepting, answer requests still waiting for their turn 503 ``stopping`` (the
        # Server classes below), let those in progress finish for this long, then cancel what is left
        timeout_graceful_shutdown=capacity.shutdown_timeout,
        **HttpSettings.from_config(node.config).uvicorn_options(),
        **kwargs,
    )


@command(None, "serve", help="serve the HTTP API and the staff console")
@option("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; put TLS in front)")
@option("--port", type=WHOLE, default=8080)
@option("--access-log", is_flag=True, help="log each request line (paths never hold numbers)")
@option(
    "--concurrency",
    type=WHOLE,
    default=None,
    metavar="N",
    help="requests worked on at once, the rest wait in order (default 8; config capacity)",
)
@option(
    "--shutdown-timeout",
    type=WHOLE,
    default=None,
    metavar="SECONDS",
    help="on SIGTERM, how long requests in progress may finish (default 10)",
)
def serve(host: str, port: int, access_log: bool, concurrency: int | None, shutdown_timeout: int | None) -> int:
    import uvicorn

    from ledger.api.settings import HttpSettings

    class Server(uvicorn.Server):
        """Stops on SIGTERM/SIGINT like uvicorn, then returns instead of re-raising the signal, so the node
        is closed and the exit status is 0 (a clean stop, not a kill)."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            from ledger.api.gate import stop_admitting

            stop_admitting(self.config.app)
            await super().shutdown(sockets)

    capacity = Capacity.from_config(
        NodeConfig.load(data_dir()), api_concurrency=concurrency, shutdown_timeout=shutdown_timeout
    )
    sock = listen(host, port)
    try:
        opened = node(pools=capacity.pools)
        try:
            opened.state.fresh()  # the decisions' state, built before the first request rather than by it
        except FlagLedgerError as exc:  # the log does not verify: every decision fails until it is repaired
            print(f"flagledger: ALARM: [{exc.code}] {exc}", file=sys.stderr)
        print(
            f"flagledger: serving {sorted(opened.app.hosted)} on http://{host}:{port} "
            f"(console: /console/, API: /api/v1/, OpenAPI: /openapi.json; {capacity.api_concurrency} requests "
            "at a time)",
            file=sys.stderr,
        )
        if HttpSettings.from_config(opened.config).insecure_cookie:
            print(
                "flagledger: WARNING: http insecure_cookie is on: console sessions over plain HTTP (local "
                "development only)",
                file=sys.stderr,
            )
        config = _uvicorn_config(opened, capacity, log_level="info", access_log=access_log)
        Server(config).run(sockets=[sock])
    finally:
        sock.close()
    out({"stopped": "serve", "url": f"http://{host}:{port}"})
    return 0


class ApiThread:
    """The API and console inside ``flagledger node``: uvicorn in a daemon thread beside the node loop.

    Both share the node; projection writers are serialised by the projector's locks, so the request path's
    catch-up and the loop's never apply a page twice. Signals stay with the node loop (only the main thread
    may install handlers), which stops this server on the way out. The port is bound here, so a busy one
    stops the node with a clear error instead of a thread dying quietly.
    """

    def __init__(self, node: Any, host: str, port: int, app: Any = None) -> None:
        """``app``: the ASGI app to serve instead of the agency's API (the portal role's routes)."""
        import threading

        import uvicorn

        class _InThread(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self) -> Iterator[None]:
                yield

            async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
                from ledger.api.gate import stop_admitting

                stop_admitting(self.config.app)
                await super().shutdown(sockets)

        self.sock = listen(host, port)
        self.capacity = Capacity.from_config(node.config)
        config = _uvicorn_config(node, self.capacity, app, log_level="warning")
        self.server = _InThread(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, name="flagledger-api", daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=self.capacity.shutdown_timeout + 5)
        self.sock.close()


@command(None, "openapi", help="print the HTTP API's OpenAPI document")
@option("--output", default=None, help="write it to this file (e.g. deploy/openapi.json)")
def openapi(output: str | None) -> int:
    from ledger.api.app import openapi_text

    text = openapi_text()
    if output:
        with open(output, "w", encoding="utf-8") as fh:
            fh.write(text)
        out({"wrote": output})
    else:
        sys.stdout.write(text)
    return 0
