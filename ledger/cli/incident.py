"""``flagledger incident report`` (the facts for a breach report to the PPC) and ``flagledger incident ack``."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from uuid import UUID

from consumers.incident_report import DEFAULT_PURPOSE
from ledger.app import Actor
from ledger.cli.base import as_actor, command, group, node
from ledger.cli.base import out as emit  # (`out` is also the name of the --out option)
from ledger.cli.parsing import UUID_ID, argument, option
from ledger.errors import InputError

incident = group("incident", "security incidents: forged signatures, forks, foreign writers, revoked keys")


def _time(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise InputError(f"--{name} is not an ISO 8601 time with a UTC offset") from None
    if at.tzinfo is None:
        raise InputError(f"--{name} needs a UTC offset (+09:00 or Z): a bare local time is refused, not guessed")
    return at


@command(
    incident, "report", help="draft the facts for a breach report to the PPC (個人情報保護委員会); the read is recorded"
)
@as_actor()
@option("--from", "since", default=None, help="incidents first seen at or after (ISO 8601 + offset)")
@option("--to", "until", default=None, help="… and before this time")
@option("--incident", type=UUID_ID, multiple=True, help="only this incident (repeatable)")
@option("--purpose", default=DEFAULT_PURPOSE, help="why the report is drafted (recorded with the read)")
@option("--json", "json_", is_flag=True, help="JSON instead of Markdown")
@option("--out", default=None, metavar="FILE", help="write to FILE (mode 0600) instead of stdout")
def report(
    actor: Actor,
    since: str | None,
    until: str | None,
    incident: tuple[UUID, ...],
    purpose: str,
    json_: bool,
    out: str | None,
) -> int:
    from consumers.incident_report import draft, render_markdown, write_private

    destination = str(Path(out).resolve()) if out else "stdout"
    result = draft(
        node(),
        actor,
        since=_time(since, "from"),
        until=_time(until, "to"),
        ids=list(incident) or None,
        purpose=purpose,
        destination=destination,
    )
    text = json.dumps(result.facts, ensure_ascii=False, indent=2) + "\n" if json_ else render_markdown(result.facts)
    if out:
        write_private(Path(out), text)
        print(
            f"wrote {out} (mode 0600; the draft names people by pseudonym: keep it like case records)", file=sys.stderr
        )
    else:
        sys.stdout.write(text)
    return 0


@command(incident, "ack", help="acknowledge an incident raised for your agency, saying what was done")
@as_actor()
@argument("incident_id", type=UUID_ID)
@option("--note", required=True, help="what was done (e.g. person contacted, sender called)")
def ack(actor: Actor, incident_id: UUID, note: str) -> int:
    from ledger.app.incidents import acknowledge

    acknowledged = acknowledge(node().app, actor, incident_id, note)
    emit({"incident": str(acknowledged.id), "acknowledged_by": str(actor), "at": acknowledged.acknowledged_at})
    return 0
