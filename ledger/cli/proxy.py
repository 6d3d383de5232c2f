"""``flagledger proxy register|cancel``: Mynaportal proxies (a perpetrator registered as proxy sees what the
victim sees until cancelled)."""

from __future__ import annotations

from ledger.app import Actor
from ledger.cli.base import as_actor, command, group, node, out
from ledger.cli.parsing import option

proxy = group("proxy", "Mynaportal proxies")


@command(proxy, "register", help="register a proxy")
@as_actor()
@option("--subject", required=True)
@option("--proxy", required=True)
def register(actor: Actor, subject: str, proxy: str) -> int:
    app = node().app
    registration = app.register_proxy(actor, subject, proxy)
    # pseudonyms only: the individual numbers typed are not repeated on the terminal
    out({"registered": str(registration), "subject": app.subject(subject), "proxy": app.subject(proxy)})
    return 0


@command(proxy, "cancel", help="cancel a proxy")
@as_actor()
@option("--subject", required=True)
@option("--proxy", required=True)
@option("--reason", default="")
def cancel(actor: Actor, subject: str, proxy: str, reason: str) -> int:
    app = node().app
    app.cancel_proxy(actor, subject, proxy, reason)
    out({"cancelled": True, "subject": app.subject(subject), "proxy": app.subject(proxy)})
    return 0
