"""CLI: ``flagledger serve`` (HTTP API + staff console) and ``flagledger staff token``."""

from __future__ import annotations

import argparse
import contextlib
import errno
import signal
import socket
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from ledger.app.capacity import Capacity
from ledger.cli.main import EXTENSIONS, GROUPS, _node, command, out
from ledger.errors import ConfigurationError, FlagLedgerError
from ledger.runtime.config import NodeConfig


def _ttl(value: str) -> timedelta:
    """``900``, ``15m``, ``8h`` → a timedelta."""
    units = {"s": 1, "m": 60, "h": 3600}
    try:
        if value[-1:] in units:
            return timedelta(seconds=float(value[:-1]) * units[value[-1]])
        return timedelta(seconds=float(value))
    except (ValueError, OverflowError):  # OverflowError: e.g. 1e300h, beyond any timedelta
        raise argparse.ArgumentTypeError("not a lifetime (e.g. 900, 15m, 8h)") from None


@command("staff token")
def _staff_token(args: argparse.Namespace) -> int:
    from ledger.api.auth import issue_token

    token, who = issue_token(_node(args), args.actor, args.staff, ttl=args.ttl, roles=tuple(args.role or ()))
    out({"token": token, "agency": who.actor.agency, "staff": who.actor.staff, "roles": list(who.roles),
         "expires_at": who.expires_at.isoformat()})
    return 0


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


def _uvicorn_config(node: Any, capacity: Capacity, **kwargs: Any) -> Any:
    import uvicorn

    from ledger.api import create_app
    from ledger.api.settings import HttpSettings

    return uvicorn.Config(create_app(node, capacity.api_concurrency), lifespan="off",
                          # SIGTERM: stop accepting, let requests in progress (and those admitted to wait) finish
                          # for this long, then cancel the rest, which have not touched the ledger yet
                          timeout_graceful_shutdown=capacity.shutdown_timeout,
                          **HttpSettings.from_config(node.config).uvicorn_options(), **kwargs)


@command("serve")
def _serve(args: argparse.Namespace) -> int:
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

    capacity = Capacity.from_config(NodeConfig.load(Path(args.data_dir)), api_concurrency=args.concurrency,
                                    shutdown_timeout=args.shutdown_timeout)
    sock = listen(args.host, args.port)
    try:
        node = _node(args, pools=capacity.pools)
        try:
            node.state.fresh()  # the decisions' state, built before the first request rather than by it
        except FlagLedgerError as exc:  # the log does not verify: every decision fails until it is repaired
            print(f"flagledger: ALARM: [{exc.code}] {exc}", file=sys.stderr)
        print(f"flagledger: serving {sorted(node.app.hosted)} on http://{args.host}:{args.port} "
              f"(console: /console/, API: /api/v1/, OpenAPI: /openapi.json; {capacity.api_concurrency} requests "
              "at a time)", file=sys.stderr)
        if HttpSettings.from_config(node.config).insecure_cookie:
            print("flagledger: WARNING: http insecure_cookie is on: console sessions over plain HTTP (local "
                  "development only)", file=sys.stderr)
        config = _uvicorn_config(node, capacity, log_level="info", access_log=args.access_log)
        Server(config).run(sockets=[sock])
    finally:
        sock.close()
    return 0


class ApiThread:
    """The API and console inside ``flagledger node``: uvicorn in a daemon thread beside the node loop.

    Both share the node; projection writers are serialised by the projector's locks, so the request path's
    catch-up and the loop's never apply a page twice. Signals stay with the node loop (only the main thread
    may install handlers), which stops this server on the way out. The port is bound here, so a busy one
    stops the node with a clear error instead of a thread dying quietly.
    """

    def __init__(self, node: Any, host: str, port: int) -> None:
        import threading

        import uvicorn

        class _InThread(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self) -> Iterator[None]:
                yield

        self.sock = listen(host, port)
        self.capacity = Capacity.from_config(node.config)
        config = _uvicorn_config(node, self.capacity, log_level="warning")
        self.server = _InThread(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                       name="flagledger-api", daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=self.capacity.shutdown_timeout + 5)
        self.sock.close()


@command("openapi")
def _openapi(args: argparse.Namespace) -> int:
    from ledger.api.app import openapi_text

    text = openapi_text()
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text)
    return 0


def _register(groups: Any, sub: Any, actor: Any) -> None:
    s = sub(groups, "serve", "serve the HTTP API and the staff console")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; put TLS in front)")
    s.add_argument("--port", type=int, default=8080)
    s.add_argument("--access-log", action="store_true", help="log each request line (paths never hold numbers)")
    s.add_argument("--concurrency", type=int, default=None, metavar="N",
                   help="requests worked on at once, the rest wait in order (default 8; config capacity)")
    s.add_argument("--shutdown-timeout", type=int, default=None, metavar="SECONDS",
                   help="on SIGTERM, how long requests in progress may finish (default 10)")
    s.set_defaults(cmd="serve")
    s = sub(groups, "openapi", "print the HTTP API's OpenAPI document")
    s.add_argument("--output", default=None, help="write it to this file (e.g. deploy/openapi.json)")
    s.set_defaults(cmd="openapi")
    staff = GROUPS.get("staff")
    if staff is not None:
        s = sub(staff, "token", "issue a short-lived API/console token for a staff member")
        actor(s)
        s.add_argument("staff")
        s.add_argument("--ttl", type=_ttl, default=timedelta(hours=1), help="lifetime: 900, 15m, 8h (max 12h)")
        s.add_argument("--role", action="append", default=None, help="narrow the token to these roles")
        s.set_defaults(cmd="staff token")


EXTENSIONS.append(_register)
