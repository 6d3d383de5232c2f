"""Mynaportal: what the subject (or a registered, active proxy) sees: the provision records and
self-information (see :mod:`projections.views` for the rules)."""

from __future__ import annotations

from dataclasses import dataclass

from ledger.app import Actor, QuerierAnswer
from ledger.app.values import is_answered
from ledger.domain.types import Action
from projections.node import NodeParts
from projections.view_reads import portal_reader


# -- Mynaportal -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PortalRecord:
    request_id: str
    created_at: str
    querier: str
    provider: str
    procedure: str
    legal_item: int
    info_kind: str
    outcome: str  # "provided" | "in_progress" | "not_provided": a held request looks like any manual one


@dataclass(frozen=True)
class PortalView:
    access: str  # "self" (the subject's credentials or card) | "proxy" | "none"
    records: tuple[PortalRecord, ...]


def _outcome(status: str) -> str:
    """The querier's answer (QuerierAnswer.of) in the portal's words: "answered" is "provided" there."""
    answer = QuerierAnswer.of("", status).status
    return "provided" if answer == "answered" else answer


def portal_records(node: NodeParts, viewer: str, subject: str) -> PortalView:
    """The provision-record display (情報提供等記録表示) of ``subject`` for whoever logged in as ``viewer``.

    ``viewer`` is the pseudonym (or number) whose credentials were used: ``viewer == subject`` is the
    subject or anyone with the subject's card; otherwise only an active proxy registration gives access.
    Who may look and what is hidden are decided from the verified log (:mod:`projections.portal_read`).
    """
    reader = portal_reader(node)
    reader.fresh()
    access, rows = reader.view(node.app.subject(viewer), node.app.subject(subject))
    return PortalView(
        access,
        tuple(
            PortalRecord(rid, at, querier, provider, procedure, int(item), kind, _outcome(status))
            for rid, at, querier, provider, procedure, item, kind, status in rows
        ),
    )


def portal_records_for(node: NodeParts, caller: Actor, viewer: str, subject: str) -> PortalView:
    """:func:`portal_records` as the API and the CLI serve it: only to the portal's system account
    (``read_portal``), acting for whoever logged in as ``viewer``. Any staff member, at any agency and
    with any role, is refused (``system_only``): the person's own records are the person's (issue 18)."""
    node.app.permit(caller, Action.READ_PORTAL)
    return portal_records(node, viewer, subject)


def self_information_for(node: NodeParts, caller: Actor, viewer: str, subject: str) -> SelfInfoView:
    """:func:`self_information` for the portal's system account only, as :func:`portal_records_for`."""
    node.app.permit(caller, Action.READ_PORTAL)
    return self_information(node, viewer, subject)


@dataclass(frozen=True)
class Holding:
    agency: str
    info_kind: str
    since: str


@dataclass(frozen=True)
class SelfInfoView:
    access: str
    withheld: bool  # NO_AUTO_RESPONSE applies: nothing is displayed automatically
    holdings: tuple[Holding, ...]

    MESSAGE = "この情報は自動では表示されません。お住まいの市区町村の窓口にお問い合わせください。"


def self_information(node: NodeParts, viewer: str, subject: str) -> SelfInfoView:
    """Self-information display (自己情報表示): which agency holds which kind of information on the subject.

    Modelled from the provision records: an agency that provided ``info_kind`` about the subject holds a
    registered copy (副本) of it. Withheld entirely while ``NO_AUTO_RESPONSE`` applies nationwide. Access,
    withholding and the sticky cutoff are decided from the verified log, each record from its signed event.
    """
    reader = portal_reader(node)
    reader.fresh()
    access, person = node.state.portal_access(node.app.subject(viewer), node.app.subject(subject))
    if access == "none":
        return SelfInfoView("none", False, ())
    if person.nar:
        return SelfInfoView(access, True, ())
    # sticky, as the provision records: nothing learnt from records made before the last release
    first: dict[tuple[str, str], str] = {}
    for facts, status in reader.records(person, person.cutoff or ""):
        if is_answered(status):
            key = (facts.provider, facts.info_kind)
            first[key] = min(first.get(key, facts.created_at), facts.created_at)
    return SelfInfoView(access, False, tuple(Holding(a, k, t) for (a, k), t in sorted(first.items())))
