"""CLI: ``flagledger serve`` (HTTP API + staff console) and ``flagledger staff token``."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from ledger.cli.main import EXTENSIONS, GROUPS, _node, command, out
from ledger.errors import FlagLedgerError


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


@command("serve")
def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from ledger.api import create_app
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

    node = _node(args)
    try:
        node.state.fresh()  # the decisions' state, built before the first request rather than by it
    except FlagLedgerError as exc:  # the log does not verify: every decision fails until it is repaired
        print(f"flagledger: ALARM: [{exc.code}] {exc}", file=sys.stderr)
    http = HttpSettings.from_config(node.config)
    print(f"flagledger: serving {sorted(node.app.hosted)} on http://{args.host}:{args.port} "
          f"(console: /console/, API: /api/v1/, OpenAPI: /openapi.json)", file=sys.stderr)
    if http.insecure_cookie:
        print("flagledger: WARNING: http insecure_cookie is on: console sessions over plain HTTP (local "
              "development only)", file=sys.stderr)
    config = uvicorn.Config(create_app(node), host=args.host, port=args.port, log_level="info",
                            access_log=args.access_log, lifespan="off", **http.uvicorn_options())
    Server(config).run()
    return 0


class ApiThread:
    """The API and console inside ``flagledger node``: uvicorn in a daemon thread beside the node loop.

    Both share the node; projection writers are serialised by the projector's locks, so the request path's
    catch-up and the loop's never apply a page twice. Signals stay with the node loop (only the main thread
    may install handlers), which stops this server on the way out.
    """

    def __init__(self, node: Any, host: str, port: int) -> None:
        import threading

        import uvicorn

        from ledger.api import create_app
        from ledger.api.settings import HttpSettings

        class _InThread(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self) -> Iterator[None]:
                yield

        options = HttpSettings.from_config(node.config).uvicorn_options()
        config = uvicorn.Config(create_app(node), host=host, port=port, log_level="warning", lifespan="off",
                                **options)
        self.server = _InThread(config)
        self.thread = threading.Thread(target=self.server.run, name="flagledger-api", daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


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
