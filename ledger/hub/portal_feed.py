"""The hub feeds the portal: each person's page, sealed to the portal under the portal's own code, whenever it
changes.

A round (:meth:`PortalFeed.step`, after each step of the hub's loop, by the leader only) finds what changed
since the last round — records, flag changes and erasures sequenced since the mark, portal codes never fed,
number-change links never fed, links undone since the mark — takes every portal code of every person touched
(across their numbers), computes the page (``sealed_page``: the records shown, hidden ones removed by the
hub's sequence, each still sealed by its provider to the portal — the hub passes on contents it cannot read)
with whether a protection applies now and whether the code's number was replaced, and owes the portal each
page whose content differs
from the last one sent under that code. Pages, digests, links fed and the new mark are written in one
transaction, each erasure's ``page_erasure`` notice before them (``ledger.linkage.erasure_messages``: the portal
records it); the hub's outbox sends them at its next step (``hub_outbox``), so a hub that dies mid-round feeds
again, and the portal keeps the newest version.

The state is read, not pushed by the loop: nothing in ``HubService`` changes, and a round that was missed (the
portal's key not yet published) is made up by the next. What the portal learns is the page's outcome only: no
holder, no agency that hides, no person id, no other code.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import uuid
from dataclasses import replace

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import SQLAlchemyError

from ledger.hub.inbox import owe
from ledger.hub.log import HubStore
from ledger.hub.proxy_approvals import proxied_by
from ledger.hub.proxy_registrations import page_proxies, registered_by
from ledger.hub.routing import holdings
from ledger.hub.sealed_records import sealed_page
from ledger.hub.tables import (
    hub_codes,
    hub_erasures,
    hub_flag_changes,
    hub_links,
    hub_portal_links,
    hub_portal_mark,
    hub_portal_sent,
    hub_proxy_approvals,
    hub_proxy_registrations,
    hub_sealed_records,
    hub_undone_links,
)
from ledger.linkage.buckets import ANSWER_SIZE
from ledger.linkage.codes import persons_of
from ledger.linkage.directory import Directory
from ledger.linkage.erasure_messages import PageErasure
from ledger.linkage.keys import PartyKeys
from ledger.linkage.names import PORTAL
from ledger.linkage.sealed_pages import SealedPageEntry, SealedPortalPage
from ledger.linkage.sealing import seal
from ledger.storage import storage_error

__all__ = ["PortalFeed", "page_for"]

log = logging.getLogger("flagledger.hub.portal")


def page_for(store: HubStore, code: str, version: int) -> SealedPortalPage:
    """The page of the person the portal knows by ``code``, as the hub sends it (the newest records that fit)."""
    page = sealed_page(store.engine, store.codes, code)
    person = store.codes.person(PORTAL, code)
    assert person is not None  # sealed_page found it
    records = [SealedPageEntry(r.record_id, r.provider, base64.b64encode(r.contents).decode()) for r in page.records]
    return SealedPortalPage.newest(
        code,
        version,
        records,
        hidden=page.note is not None,
        protected=bool(holdings(store.engine, store.codes, person)),
        superseded=store.codes.next(person) is not None,
        proxies=page_proxies(store, person),  # registered, and while protected approved by every holder
    )


def _digest(page: SealedPortalPage) -> str:
    return hashlib.sha256(replace(page, version=0).encode()).hexdigest()  # the content, whatever its version


class PortalFeed:
    def __init__(self, store: HubStore, keys: PartyKeys, directory: Directory) -> None:
        self.store = store
        self.keys = keys
        self.directory = directory

    def step(self) -> int:
        """One round; returns the number of pages owed to the portal (0 on a standby)."""
        if not self.store.sequencer.leader:
            return 0  # the leader feeds: a standby's pages would only repeat its
        version = self.store.sequencer.last()
        mark, persons, new_links = self._touched(version)
        codes = self._codes(persons)
        erased = [(code, seq) for person, seq in self._erased(mark, version) for code in self._codes({person})]
        pages = [page_for(self.store, code, version) for code in codes]
        sent = self._sent(codes)
        changed = [(p, d) for p in pages if (d := _digest(p)) != sent.get(p.code)]
        if not changed and not new_links and mark == version:
            return 0
        portal = self.directory.sealing_key(PORTAL)  # not published yet: nothing written, the next round retries
        notices: list[PageErasure | SealedPortalPage] = [PageErasure(code, seq) for code, seq in erased]
        owes = [
            seal(self.keys.signer, portal, PORTAL, uuid.uuid4().hex, p.kind, p.encode(), ANSWER_SIZE)
            for p in [*notices, *(p for p, _ in changed)]
        ]
        try:
            with self.store.engine.begin() as conn:
                for message in owes:
                    owe(conn, PORTAL, message)
                for page, digest in changed:
                    conn.execute(delete(hub_portal_sent).where(hub_portal_sent.c.code == page.code))
                    conn.execute(insert(hub_portal_sent).values(code=page.code, digest=digest))
                for old in new_links:
                    conn.execute(insert(hub_portal_links).values(old=old))
                conn.execute(delete(hub_portal_mark))
                conn.execute(insert(hub_portal_mark).values(id=1, seq=version))
        except SQLAlchemyError as exc:
            raise storage_error("cannot record what the hub fed the portal", exc, "the next round feeds again") from exc
        if owes:
            log.info("the hub owes the portal %d page(s) (sequence %d)", len(owes), version)
        return len(owes)

    def _codes(self, persons: set[str]) -> list[str]:
        """The portal's codes of ``persons``, across each one's numbers."""
        return sorted(
            {
                c
                for p in persons
                for q in persons_of(self.store.codes, p)
                if (c := self.store.codes.codes(q).get(PORTAL))
            }
        )

    def _erased(self, mark: int, version: int) -> list[tuple[str, int]]:
        """(person, sequence) of each agency's erasure since the mark (ledger.hub.erasure): the portal is told."""
        e = hub_erasures.c
        try:
            with self.store.engine.connect() as conn:
                rows = conn.execute(select(e.person, e.seq).where((e.seq > mark) & (e.seq <= version)).order_by(e.seq))
                return [(str(p), int(q)) for p, q in rows]
        except SQLAlchemyError as exc:
            raise storage_error("cannot read the hub's erasures", exc) from exc

    def _touched(self, version: int) -> tuple[int, set[str], list[str]]:
        """The mark, the persons touched since it (up to ``version``), and the links not yet fed."""
        r, f, c, k, e = hub_sealed_records.c, hub_flag_changes.c, hub_codes.c, hub_links.c, hub_erasures.c
        a, g = hub_proxy_approvals.c, hub_proxy_registrations.c
        try:
            with self.store.engine.connect() as conn:
                mark = int(conn.execute(select(hub_portal_mark.c.seq)).scalar() or 0)
                persons = {
                    str(p)
                    for col in (r, f, e, a, g)  # an erasure, a proxy approval or registration changes the page too
                    for p in conn.execute(
                        select(col.person).where((col.seq > mark) & (col.seq <= version)).distinct()
                    ).scalars()
                }
                # a later outcome of a record (ledger.hub.record_outcomes) keeps the record's number: its own
                persons |= {
                    str(p)
                    for p in conn.execute(
                        select(r.person).where((r.updated > mark) & (r.updated <= version)).distinct()
                    ).scalars()
                }
                fed = select(hub_portal_sent.c.code)
                persons |= {
                    str(p)
                    for p in conn.execute(select(c.person).where((c.holder == PORTAL) & c.code.not_in(fed))).scalars()
                }
                links = conn.execute(select(k.old, k.new).where(k.old.not_in(select(hub_portal_links.c.old)))).all()
                u = hub_undone_links.c  # a link undone since the mark parts two pages (each keeps what it hid)
                parted = conn.execute(
                    select(u.old, u.new).where((u.undone_seq > mark) & (u.undone_seq <= version))
                ).all()
        except SQLAlchemyError as exc:
            raise storage_error("cannot read what changed for the portal", exc) from exc
        persons |= {str(p) for link in [*links, *parted] for p in link}
        # a proxy's new card (or number) changes the pages it may read
        persons |= proxied_by(self.store, persons) | registered_by(self.store, persons)
        return mark, persons, [str(link.old) for link in links]

    def _sent(self, codes: list[str]) -> dict[str, str]:
        if not codes:
            return {}
        s = hub_portal_sent.c
        try:
            with self.store.engine.connect() as conn:
                return {
                    str(code): str(d) for code, d in conn.execute(select(s.code, s.digest).where(s.code.in_(codes)))
                }
        except SQLAlchemyError as exc:
            raise storage_error("cannot read what the hub fed the portal", exc) from exc
