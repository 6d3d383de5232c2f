"""Staff of any agency: the nationwide protection state, liaison references and the counter (see
:mod:`projections.views` for the rules)."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from sqlalchemy import select

from ledger.app import Actor, QuerierAnswer
from ledger.domain.types import Action
from ledger.errors import Code, NotFoundError, PermissionDenied
from ledger.log.keyed_hash import KeyedHash
from projections.node import NodeParts
from projections.portal import portal_records as records
from projections.view_reads import fresh, record_check, staff_at


# -- staff: nationwide state and the counter -----------------------------------------------------------------
def liaison_ref(secret: bytes | KeyedHash, agency: str, subject: str) -> str:
    """An opaque handle on one holding (agency, pseudonym): any node of the deployment derives the same one,
    only the holding agency can resolve it, and nobody can test agency codes against it without the secret
    (the pseudonym secret: its :class:`KeyedHash` computes the HMAC where it lives, an HSM with ``pkcs11``)."""
    mac = KeyedHash.of(secret, 0)(f"liaison\x00{agency}\x00{subject}".encode()).hex()
    return "L-" + mac[:20]


@dataclass(frozen=True)
class NationwideView:
    subject: str
    protected: bool
    flags: tuple[str, ...]
    liaison: tuple[str, ...]  # contact the protecting side through these; never an agency code
    holders: tuple[str, ...] | None  # the viewer's own agency when it holds a flag; None otherwise
    basis: str  # "other_agency" | "holding_agency"


def nationwide_view(node: NodeParts, actor: Actor, subject: str, *, purpose: str | None = None) -> NationwideView:
    """Is this person protected anywhere, as staff member ``actor`` may see it: the flags, opaque liaison
    references, and — only to staff of an agency that holds a flag — that agency's own holding.

    No staff member of any agency learns which *other* agencies protect a person, whatever their roles or
    stated ``purpose`` (issue 18: reviewers and auditors anywhere read the holders by giving any purpose).
    Another holder may be where the victim lives now, and this may be the counter of the municipality she
    fled. Asking for them (``purpose`` given) is refused with ``holders_withheld`` and records nothing;
    contact goes through the liaison reference, resolved by the holder itself (the hub, issue 19, will
    carry the contact).
    """
    staff_at(node, actor)
    if purpose is not None:
        raise PermissionDenied(
            "which agencies protect a person is not shown to other agencies, whatever the purpose: "
            "contact the protecting side through the liaison reference",
            code=Code.HOLDERS_WITHHELD,
        )
    s = node.app.subject(subject)
    held = node.state.person(s).holdings  # from the verified log: a deleted view row unprotects nobody
    secret = node.keys.pseudonym_hash()
    flags = tuple(sorted({f for _, _, f in held}))
    liaison = tuple(sorted({liaison_ref(secret, a, p) for a, p, _ in held}))
    if any(a == actor.agency for a, _, _ in held):
        return NationwideView(s, bool(held), flags, liaison, (actor.agency,), "holding_agency")
    return NationwideView(s, bool(held), flags, liaison, None, "other_agency")


@dataclass(frozen=True)
class LiaisonTarget:
    subject: str
    flags: tuple[str, ...]


def resolve_liaison(node: NodeParts, actor: Actor, token: str, *, purpose: str) -> LiaisonTarget:
    """The holding agency's contact point (Point 5) turns a liaison reference back into its own holding.

    The read is recorded (an ``AccessRecord`` naming ``purpose``) before anything is returned, whoever asks
    (API, console, CLI): a lookup nobody recorded is exactly what a curious insider would want.
    """
    node.app.permit(actor, Action.VIEW_PROTECTED)
    secret = node.keys.pseudonym_hash()
    rows = node.state.holdings_of(actor.agency)
    flags = sorted(str(f) for s, f in rows if liaison_ref(secret, actor.agency, str(s)) == token)
    subject = next((str(s) for s, _ in rows if liaison_ref(secret, actor.agency, str(s)) == token), None)
    if subject is None:
        raise NotFoundError("that liaison reference names no protection held by your agency")
    node.app.record_access(actor, subject, "liaison reference", purpose)
    return LiaisonTarget(subject, tuple(flags))


@dataclass(frozen=True)
class CounterAnswer:
    request_id: str
    asked_at: str
    procedure: str
    info_kind: str
    status: str  # as QuerierAnswer: "answered" | "in_progress" | "not_provided"
    message: str
    provider: str | None  # None whenever the subject is protected or nothing was provided


@dataclass(frozen=True)
class CounterView:
    subject: str
    protection: NationwideView
    answers: tuple[CounterAnswer, ...]

    NOTICE = "保護対象者です。本人以外からの問合せには、情報が秘匿されている前提で対応してください。"


def counter_view(node: NodeParts, actor: Actor, subject: str) -> CounterView:
    """What counter staff at ``actor.agency`` can tell someone asking about their queries on ``subject``
    (Point 4: they see the protection first and answer on the premise that the information is secret)."""
    node.app.permit(actor, Action.COUNTER_LOOKUP)
    protection = nationwide_view(node, actor, subject)
    fresh(node)
    person = node.state.person(protection.subject)
    names = set(person.aliases)
    check = record_check(node)
    with node.engine.connect() as conn:
        rows = conn.execute(
            select(records.c.request_id, records.c.position, records.c.status).where(
                (records.c.querier == actor.agency) & records.c.subject.in_(person.aliases)
            )
        ).all()
    answers = []
    for r in rows:
        facts = check.facts(str(r.request_id), int(r.position))
        if facts is None or facts.subject not in names or facts.querier != actor.agency:
            continue  # a row the log does not bear out (edited or moved): not shown
        # a staff-made decision shows only from the provider's batch time on (read from the log, not the view)
        decided = r.status in ("provided_manually", "refused")
        released = not decided or node.app.answer_released(UUID(facts.request_id))
        answer = QuerierAnswer.of(facts.request_id, r.status, released=released)
        status, message = answer.status, answer.message
        # sticky, as on the portal: after release, answers from before it still do not name the provider
        sticky = person.cutoff is not None and facts.created_at < person.cutoff
        provider = facts.provider if status == "answered" and not person.protected and not sticky else None
        answers.append(
            CounterAnswer(
                facts.request_id, facts.created_at, facts.procedure, facts.info_kind, status, message, provider
            )
        )
    answers.sort(key=lambda a: (a.asked_at, a.request_id))
    return CounterView(protection.subject, protection, tuple(answers))
