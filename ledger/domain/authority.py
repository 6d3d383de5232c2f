"""Who may write what: the one authority table of flagledger, and the checks every path into the log makes.

A signature proves who wrote an event, not that they were entitled to. A peer agency is trusted for its own
acts on its own streams and for nothing else (the threat model's "peer agency"), so every event type of
``ledger/domain`` has one row here saying:

* **writer**: who may append it to a stream. ``owner``: only the stream's owning agency, which is the agency
  that signed the stream's first event (v1) — fixed for the stream's life, whatever later events or payloads
  say. ``any agency``: any agency node (one event type today, with the reason in its row). Either way only to a
  stream of the event's own aggregate (:func:`append_violation`).
* **party**: for the aggregates two parties take part in (provision requests, protection-body requests, probe
  notices, proxy registrations), which party that writer is and that the other one never appends — checked
  against what :mod:`ledger.app` does today.
* **nodes**: the kinds of node whose key may sign it. Only agency nodes exist today; a linkage hub and a
  portal are coming and will be given their rows here (a set, so a row can name several).
* **agency fields**: payload fields naming an agency that must be the signer's agency (a peer cannot open a
  stream "in another agency's name"); **key fields**: payload fields naming a signing key that must be one of
  the signer's agency's keys (a peer cannot revoke, retire or add another agency's key on its own registry).
* **other-agency fields**: payload fields that name another agency on purpose (the municipality a body asks,
  the querier of a provision request, …): listed so that a new agency-naming field is a decision, not an
  accident (``tests/unit/test_authority.py`` fails on a field in none of the three lists).
* **locally**: who at the owning agency causes it; enforced by :meth:`ledger.app.FlagLedger.authorise` when
  the command runs (an event arriving from a peer carries no staff authority we could check: its agency
  answers for its staff, and only for its own streams — which is what the writer column enforces).

Where it is enforced (``foreign_writer``): :class:`ledger.log.mapper.SignedMapper` refuses to seal such an event
(``PermissionDenied``, nothing recorded); ``consumers.ingest`` parks it on every entry path (ingest, batched
ingest, release of held-back events, replay of parked ones); ``audit verify`` names an event that got into
the store anyway as the first bad one. The signing key itself is checked by :class:`ledger.log.signing.KeyRing`:
it must be recorded for the signer's agency (by that agency's own ``KeyAdded``, signed by a key of it, or
vouched for by a local administrator) and valid at the event's time; together with the writer column a
key-registry event is therefore signed by a current key of the agency owning the registry.

``python -m ledger.domain.authority`` prints the table as Markdown;
``python -m ledger.domain.authority --write docs/authority.md`` puts it into that page (a test keeps them equal).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from uuid import UUID

from ledger.domain.authority_rules import AGENCY_NODES, DOMAIN_PREFIX, TABLE, NodeKind, Rule, Writer

__all__ = [
    "ANY_WRITER_TOPICS",
    "END",
    "NOT_OWNER",
    "START",
    "TABLE",
    "NodeKind",
    "Owner",
    "Rule",
    "Writer",
    "aggregate_of",
    "append_violation",
    "foreign_writer_reason",
    "markdown",
    "node_kind",
    "payload_violation",
    "write_docs",
]


# topics a non-owner may append (the writer check skips them; everything else is owner-only)
ANY_WRITER_TOPICS = frozenset(t for t, r in TABLE.items() if r.writer is Writer.ANY_AGENCY)


def node_kind(origin: str) -> NodeKind:
    """The kind of node whose key signed as ``origin``. Every signer is an agency today; hub and portal keys
    will be told apart here (by their registry), and their rows will name them."""
    return NodeKind.AGENCY


# per topic, the checks payload_violation makes: (agency fields, key fields, stream_of), or None for none
_Checks = tuple[tuple[str, ...], tuple[str, ...], Callable[[str], UUID] | None]
_CHECKS: dict[str, _Checks | None] = {
    t: ((r.agency_fields, r.key_fields, r.stream_of) if (r.agency_fields or r.key_fields or r.stream_of) else None)
    for t, r in TABLE.items()
}
_ALL_AGENCY_NODES = all(r.nodes == AGENCY_NODES for r in TABLE.values())


def payload_violation(
    topic: str, origin: str, payload: Mapping[str, Any], stream: UUID | str, version: int
) -> str | None:
    """What makes signer ``origin`` no writer of this event on its own terms, or None.

    Checks what one event shows alone: the topic has a row, the signer's node kind is in it, every agency
    field names the signer, every key field names a key of the signer's agency, and a creation event with a
    fixed stream id is on the signer's own. Whether the signer owns the stream is :func:`foreign_writer_reason`'s
    question (it needs the stream's v1). The answer names fields, never their values (they may be personal data).
    """
    try:
        checks = _CHECKS[topic]
    except KeyError:
        return f"{topic} has no row in the authority table: nobody may write it"
    if not _ALL_AGENCY_NODES and node_kind(origin) not in TABLE[topic].nodes:
        return f"a {node_kind(origin)} node may not originate {topic}"
    if checks is None:
        return None
    agency_fields, key_fields, stream_of = checks
    for name in agency_fields:
        if payload.get(name) != origin:
            return f"payload field `{name}` does not name the signing agency {origin}"
    for name in key_fields:
        value = payload.get(name)
        if not isinstance(value, str) or value.partition(":")[0] != origin:
            return f"payload field `{name}` does not name a key of the signing agency {origin}"
    if stream_of is not None and version == 1 and str(stream) != str(stream_of(origin)):
        return f"{topic} opens a stream other than the signing agency {origin}'s own"
    return None


def foreign_writer_reason(stream: str, version: int, topic: str, origin: str, why: str) -> str:
    """The parking / audit reason: stream, version, topic and signer; no payload value, no owner named."""
    return f"v{version} of stream {stream} ({topic}) signed by agency {origin}: {why} (docs/authority.md)"


NOT_OWNER = "the stream belongs to another agency (the signer of its v1)"

# a stream's owner: (owning agency, the stream's aggregate — its v1's topic without the event name)
Owner = tuple[str, str]


def aggregate_of(topic: str) -> str:
    """``ledger.domain.flags:Protection.FlagsSet`` → ``ledger.domain.flags:Protection``."""
    return topic.rpartition(".")[0]


def append_violation(topic: str, origin: str, owner: Owner | None) -> str | None:
    """What makes signer ``origin`` no writer of ``topic`` on a stream whose v1 says ``owner``, or None.

    Only the owner appends, except to the topics any agency may write (:data:`ANY_WRITER_TOPICS`); and an event
    only ever goes on a stream of its own aggregate (else that exception would let anyone append a proxy
    cancellation to another agency's protection, taking the place of the owner's next event).
    ``owner`` None: the stream's v1 is unknown, which no caller should ask about (refused, to be safe).
    """
    if owner is None:
        return NOT_OWNER
    agency, aggregate = owner
    if topic.rpartition(".")[0] != aggregate:
        return f"the stream holds {aggregate.partition(':')[2]} events, not this one"
    if origin != agency and topic not in ANY_WRITER_TOPICS:
        return NOT_OWNER
    return None


def markdown() -> str:
    """The table as Markdown, as ``docs/authority.md`` shows it."""

    def cell(text: str) -> str:
        return text.replace("|", "\\|") or "—"

    def fields(names: tuple[str, ...]) -> str:
        return ", ".join(f"`{n}`" for n in names)

    lines = [
        "| topic | shared | writer | party | nodes | agency fields = signer | key fields of signer | "
        "names another agency | locally |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in TABLE.values():
        writer = r.writer.value + (f" ({r.note})" if r.note else "")
        extra = fields(r.agency_fields) + (
            f"; v1 only at `{r.topic.split(':')[1].split('.')[0]}.create_id(signer)`" if r.stream_of is not None else ""
        )
        lines.append(
            "| "
            + " | ".join(
                cell(c)
                for c in (
                    f"`{r.topic.removeprefix(DOMAIN_PREFIX)}`",
                    "yes" if r.shared else "no",
                    writer,
                    r.party,
                    ", ".join(sorted(n.value for n in r.nodes)),
                    extra,
                    fields(r.key_fields),
                    fields(r.other_agency_fields),
                    r.locally,
                )
            )
            + " |"
        )
    return "\n".join(lines) + "\n"


START = "<!-- authority table: generated by `python -m ledger.domain.authority` -->\n"
END = "<!-- end of table -->"


def write_docs(path: str) -> None:
    """Replace the table between the markers of ``path`` (``docs/authority.md``) with :func:`markdown`'s."""
    from pathlib import Path

    doc = Path(path)
    text = doc.read_text()
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    doc.write_text(head + START + markdown() + END + tail)


if __name__ == "__main__":
    import sys

    if sys.argv[1:2] == ["--write"]:  # python -m ledger.domain.authority --write docs/authority.md
        write_docs(sys.argv[2])
    else:
        print(markdown(), end="")
