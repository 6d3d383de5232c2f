"""``flagledger incident report``: the facts an agency needs for its breach report to the Personal Information
Protection Commission (個人情報保護委員会), drafted from the incidents raised for it.

What happened (each kind in plain Japanese and English), when (first and last seen), which records (stream ids,
versions, topics, parked message ids), which persons (pseudonyms only: the ledger never holds an individual
number), what was done (parked and not applied — checked against the log now —, agencies on hold,
acknowledgements) and what to do next. A draft of facts, not a decision: whether and when to report is for the
agency's privacy officer.

Everything comes from the log (incidents are loaded and verified from their events, :func:`ledger.app.incidents.
incidents_of`) and from the parked message itself, never from a view. Drafting is a read of protected details:
an ``IncidentReport.Drafted`` event and one ``AccessRecord`` per person named are saved, together, before the
report is returned.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from ledger import clock
from ledger.app import Actor
from ledger.app.holds import holds
from ledger.app.incidents import REPORT_ACTIONS, authorise_any, incidents_of, scrub
from ledger.domain.identity import AccessRecord
from ledger.domain.incidents import Incident, IncidentKind, IncidentReport
from ledger.errors import Code, FlagLedgerError, InputError, StorageError
from ledger.log.envelope import Envelope
from ledger.runtime.bootstrap import Node
from ledger.runtime.tables import parked_messages

__all__ = ["DEFAULT_PURPOSE", "KIND_TEXT", "draft", "render_markdown", "write_private"]

FORMAT = "flagledger-incident-report/v1"
DEFAULT_PURPOSE = "個人情報保護委員会への報告の準備 (preparing a breach report to the PPC)"
READ_WHAT = "incident report"

# each kind in plain Japanese and English: what it means for the people concerned
KIND_TEXT: dict[str, tuple[str, str]] = {
    IncidentKind.FORGED_SIGNATURE: (
        "署名の偽造・改ざんの疑い：署名が検証できない、または署名に使えない鍵（未知・他機関・失効済み）で署名された"
        "メッセージが届きました。",
        "Forged or altered message: a message arrived whose signature does not verify, or that was signed with a "
        "key that may not sign it (unknown, another agency's, or revoked).",
    ),
    IncidentKind.FORK: (
        "記録の分岐（書き換え）の疑い：同じ記録の同じ版について、すでに保有するものと異なる内容が届きました。"
        "送信元が二つの異なる履歴を示しています。",
        "Forked or rewritten history: a different version of a record this node already holds arrived; the "
        "sender showed two different histories.",
    ),
    IncidentKind.FOREIGN_WRITER: (
        "他機関による書き込みの試み：記録を所有しない機関が、その記録（例：保護の設定）を変更しようとしました。",
        "Write by a non-owner: an agency tried to change a record it does not own (for example another agency's "
        "protection flags).",
    ),
    IncidentKind.REVOKED_KEY_LATE: (
        "失効した鍵の使用の疑い：失効済みの鍵で署名された新しいメッセージが、失効の後に届きました。盗まれた鍵で"
        "過去の日時を装った可能性があります。",
        "Revoked key used late: a new message signed by a key that has been revoked arrived after the revocation; "
        "whoever stole a key can backdate what they sign.",
    ),
}

_NEXT_ALWAYS: list[tuple[str, str]] = [
    (
        "「4. 誰の情報か」に仮名で示す保護対象者について、担当者が直ちに本人の安全と、"
        "転居・連絡先変更の要否を確認してください。仮名から本人を特定するには、自機関の相談記録を使います。",
        "Check now on the safety of every protected person listed under 4 (by pseudonym), including whether they need "
        "to move; find who they are from your agency's own case records.",
    ),
    (
        "個人情報の漏えい等（またはそのおそれ）に当たるか、個人情報保護委員会への速報・確報が必要か、その期限を、"
        "個人情報保護の担当部署が判断してください。この文書は事実の整理であり、判断ではありません。",
        "Your privacy officer decides whether this is a leak (or a risk of one) to report to the PPC, and the "
        "deadlines of the preliminary and final reports; this document lists facts, it decides nothing.",
    ),
]
_NEXT_BY_KIND: dict[str, tuple[str, str]] = {
    IncidentKind.FORGED_SIGNATURE: (
        "名乗られた送信元機関に、既知の連絡手段で確認してください。鍵が漏えいしていれば、その機関が鍵を失効させます"
        "（`flagledger key revoke`）。",
        "Ask the agency the message claims to come from, by a channel you already know, whether it sent it; if its "
        "key leaked, it revokes it (`flagledger key revoke`).",
    ),
    IncidentKind.FORK: (
        "送信元機関とチェックポイントを比較してください（`flagledger audit latest-checkpoint --agency CODE "
        "--export FILE`）。保留中の機関は、原因を確認してから `flagledger audit release` で解除します。",
        "Compare checkpoints with the sending agency (`flagledger audit latest-checkpoint --agency CODE --export "
        "FILE`); lift a hold (`flagledger audit release`) only once the cause is known.",
    ),
    IncidentKind.FOREIGN_WRITER: (
        "書き込もうとした機関と、全国の配備の運用者に通知してください。その機関が送っていなければ、鍵の失効を求めます。",
        "Tell the writing agency and the deployment's operator; if that agency did not send it, ask that its key be "
        "revoked.",
    ),
    IncidentKind.REVOKED_KEY_LATE: (
        "送信元機関に、そのイベントを失効前に本当に送ったか確認してください。確認できた場合に限り "
        "`flagledger consumers replay ID --accept-revoked-key` で適用します。",
        "Ask the sending agency whether it really sent that event before the revocation; only if it confirms, "
        "apply it with `flagledger consumers replay ID --accept-revoked-key`.",
    ),
}
_NEXT_OWN_KEY = (
    "自機関の署名で正しく署名された、このノードが書いていないイベントが届きました。自機関の署名鍵が漏えいしたか、"
    "このノードのバックアップが別の場所で動いている可能性があります。鍵を更新し（`flagledger key rotate`）、古い鍵を"
    "失効させてください（`flagledger key revoke`）。",
    "An event properly signed with your own agency's key, which this node never wrote, arrived: your signing key may "
    "have leaked, or a backup of this node is running elsewhere. Rotate the key (`flagledger key rotate`) and revoke "
    "the old one (`flagledger key revoke`).",
)
_NEXT_LAST = (
    "対応を終えたら、事案を確認済みにしてください（`flagledger incident ack ID --as AGENCY/STAFF --note …`）。"
    "確認済みの事案も、この報告には残ります。",
    "Once handled, acknowledge each incident (`flagledger incident ack ID --as AGENCY/STAFF --note …`); "
    "acknowledged incidents stay in this report.",
)


@dataclass(frozen=True)
class Draft:
    facts: dict[str, Any]
    subjects: list[str]


def _seen(incident: Incident) -> datetime:
    return incident.created_on


def _in_log(node: Node, incident: Incident, raw: bytes | None) -> bool | None:
    """Whether the parked message's event is in this node's log now (None if the message is unknown)."""
    if raw is None or not incident.stream:
        return None
    try:
        env = Envelope.from_bytes(raw)
        rows = node.app.recorder.select_events(
            UUID(incident.stream), gt=incident.stream_version - 1, lte=incident.stream_version
        )
    except (FlagLedgerError, ValueError):
        return None
    if not rows:
        return False
    held = node.app.signed_mapper.open(rows[0].state)
    # the header (leaf) and the payload: an altered payload under a genuine header is not the event held
    return held.leaf_hash == env.leaf_hash and held.payload == env.payload


def _parked(node: Node, parked_id: int) -> tuple[str, bytes] | None:
    try:
        with node.engine.connect() as conn:
            row = conn.execute(
                select(parked_messages.c.status, parked_messages.c.envelope).where(parked_messages.c.id == parked_id)
            ).first()
    except SQLAlchemyError as exc:
        raise StorageError(f"cannot read parked message {parked_id}: {exc}") from exc
    return None if row is None else (str(row[0]), bytes(row[1]))


def _record(incident: Incident, node: Node) -> dict[str, Any]:
    parked = _parked(node, incident.parked_id)
    applied = _in_log(node, incident, parked[1] if parked is not None else None)
    return {
        "incident": str(incident.id),
        "kind": incident.kind,
        "code": incident.code,
        "seen_at": _seen(incident).isoformat(),
        "stream": incident.stream,
        "version": incident.stream_version,
        "topic": incident.topic,
        "event_id": incident.event_id,
        "claimed_origin": incident.origin,
        "claimed_key": incident.key_id,
        "claimed_time": incident.stamped,
        "stream_owner": incident.owner,
        "parked_message": incident.parked_id,
        "parked_status": parked[0] if parked is not None else "missing",
        "in_log_now": applied,
        "message_sha256": incident.message,
        "source": incident.source,
        "reason": incident.reason,
        "acknowledged_by": f"{incident.agency}/{incident.acknowledged_by}" if incident.acknowledged_by else None,
        "acknowledged_at": incident.acknowledged_at,
        "note": scrub(incident.note, 2000),
    }


def _select(
    found: list[Incident], since: datetime | None, until: datetime | None, ids: list[UUID] | None
) -> list[Incident]:
    chosen = [i for i in found if (since is None or _seen(i) >= since) and (until is None or _seen(i) < until)]
    if ids:
        wanted = set(ids)
        chosen = [i for i in chosen if i.id in wanted]
        missing = wanted - {i.id for i in chosen}
        if missing:
            from ledger.errors import NotFoundError

            raise NotFoundError(f"no incident {sorted(map(str, missing))[0]} at this agency in that period")
    return chosen


def draft(
    node: Node,
    actor: Actor,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    ids: list[UUID] | None = None,
    purpose: str = DEFAULT_PURPOSE,
    destination: str = "stdout",
) -> Draft:
    """The facts of ``actor.agency``'s incidents (all, or those seen in [since, until), or the ones named).

    The read is recorded (``IncidentReport.Drafted`` and one ``AccessRecord`` per person named) before the
    facts are returned."""
    app = node.app
    authorise_any(app, actor, REPORT_ACTIONS)
    if not purpose.strip():
        raise InputError("say why the report is drafted (purpose)")
    if len(purpose) > 500:
        raise InputError("purpose is longer than 500 characters")
    for name, at in (("from", since), ("to", until)):
        if at is not None and at.tzinfo is None:
            raise InputError(f"--{name} needs a UTC offset (+09:00 or Z)")
    chosen = _select(incidents_of(app, actor.agency), since, until, ids)
    records = [_record(i, node) for i in chosen]
    verified = sorted({s for i in chosen for s in i.subjects})
    claimed = sorted({s for i in chosen for s in i.claimed_subjects} - set(verified))
    subjects = verified + claimed
    kinds = Counter(i.kind for i in chosen)
    origins = sorted({i.origin for i in chosen if i.origin})
    held_now = [h for h in holds(app) if h["agency"] in origins]
    agency = app.agency(actor.agency)
    facts: dict[str, Any] = {
        "format": FORMAT,
        "agency": {"code": agency.code, "name": agency.name},
        "drafted_at": clock.now().isoformat(),
        "drafted_by": str(actor),
        "purpose": purpose,
        "period": {"from": since.isoformat() if since else None, "to": until.isoformat() if until else None},
        "what": [
            {"kind": k, "count": kinds[k], "ja": KIND_TEXT[k][0], "en": KIND_TEXT[k][1]}
            for k in IncidentKind
            if kinds[k]
        ],
        "when": {
            "first_seen": min(_seen(i) for i in chosen).isoformat() if chosen else None,
            "last_seen": max(_seen(i) for i in chosen).isoformat() if chosen else None,
            "claimed_times": sorted({i.stamped for i in chosen if i.stamped}),
        },
        "records": records,
        "persons": {"pseudonyms": verified, "claimed_pseudonyms": claimed},
        "done": {
            "parked_not_applied": [r["incident"] for r in records if r["in_log_now"] is False],
            "in_log_now": [r["incident"] for r in records if r["in_log_now"]],
            "origins_held_when_raised": sorted({i.origin for i in chosen if i.origin_held}),
            "origins_on_hold_now": [{"agency": h["agency"], "reason": scrub(str(h["reason"]), 500)} for h in held_now],
            "acknowledged": [
                {"incident": r["incident"], "by": r["acknowledged_by"], "at": r["acknowledged_at"], "note": r["note"]}
                for r in records
                if r["acknowledged_by"]
            ],
            "open": [r["incident"] for r in records if not r["acknowledged_by"]],
        },
        "next": [
            {"ja": ja, "en": en}
            for ja, en in [
                *_NEXT_ALWAYS,
                *(_NEXT_BY_KIND[k] for k in IncidentKind if kinds[k]),
                *([_NEXT_OWN_KEY] if any(i.code == Code.FORGED_OWN for i in chosen) else []),
                _NEXT_LAST,
            ]
        ],
    }
    reads = [
        AccessRecord(agency=actor.agency, staff=actor.staff, subject=s, what=READ_WHAT, purpose=purpose)
        for s in subjects
    ]
    record = IncidentReport(
        agency=actor.agency,
        staff=actor.staff,
        purpose=purpose,
        incidents=[str(i.id) for i in chosen],
        subjects=subjects,
        destination=destination,
    )
    app.save_as(actor.agency, record, *reads)
    return Draft(facts, subjects)


# -- Markdown ----------------------------------------------------------------------------------------------------
def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    text = text.replace("\\", "\\\\").replace("|", "\\|").replace("`", "'").replace("<", "&lt;").replace(">", "&gt;")
    return " ".join(text.split()) or "-"


def _yes_no(value: bool | None) -> str:
    return {True: "yes / 記録あり", False: "no / 記録なし", None: "unknown / 不明"}[value]


def render_markdown(facts: dict[str, Any]) -> str:
    a, when, done, persons = facts["agency"], facts["when"], facts["done"], facts["persons"]
    lines = [
        "# 個人情報保護委員会への報告のための事実の整理 / Facts for a breach report to the PPC",
        "",
        f"- 機関 / Agency: {_cell(a['name'])} ({_cell(a['code'])})",
        f"- 作成 / Drafted: {_cell(facts['drafted_at'])} by {_cell(facts['drafted_by'])} "
        f"(目的 / purpose: {_cell(facts['purpose'])})",
        f"- 対象期間 / Period: {_cell(facts['period']['from'])} – {_cell(facts['period']['to'])}",
        "- 下書き：提出前にすべての事実を確認してください / DRAFT: check every fact before filing",
        "",
        "## 1. 何が起きたか / What happened",
        "",
    ]
    if not facts["what"]:
        lines.append("この期間に事案はありません。 / No incident in this period.")
    for w in facts["what"]:
        lines += [f"- **{w['kind']}** ({w['count']} 件 / incidents)", f"  - {w['ja']}", f"  - {w['en']}"]
    lines += [
        "",
        "## 2. いつ / When",
        "",
        f"- 最初の検知 / First seen: {_cell(when['first_seen'])}",
        f"- 最後の検知 / Last seen: {_cell(when['last_seen'])}",
        f"- メッセージが主張する日時 / Times the messages claim: "
        f"{', '.join(_cell(t) for t in when['claimed_times']) or '-'}",
        "",
        "## 3. どの記録か / Which records",
        "",
        "| incident | kind (code) | seen | stream | version | topic | claimed origin | owner | parked message |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in facts["records"]:
        lines.append(
            f"| {_cell(r['incident'])} | {_cell(r['kind'])} ({_cell(r['code'])}) | {_cell(r['seen_at'])} | "
            f"{_cell(r['stream'])} | {_cell(r['version'])} | {_cell(r['topic'])} | {_cell(r['claimed_origin'])} | "
            f"{_cell(r['stream_owner'])} | {_cell(r['parked_message'])} ({_cell(r['parked_status'])}) |"
        )
    lines += ["", "Reasons recorded when parked / 保留の理由:", ""]
    lines += [f"- {_cell(r['incident'])}: {_cell(r['reason'])}" for r in facts["records"]]
    lines += [
        "",
        "## 4. 誰の情報か（仮名のみ） / Which persons (pseudonyms only)",
        "",
        "個人番号は台帳に保存されていません。本人の特定には自機関の相談記録を使ってください。 / The ledger holds no "
        "individual number; find who a pseudonym is from your agency's own case records.",
        "",
        f"- 記録から確認 / From this node's verified records: {', '.join(persons['pseudonyms']) or '-'}",
        f"- メッセージが名乗るのみ（未検証） / Named only by the messages (unverified): "
        f"{', '.join(persons['claimed_pseudonyms']) or '-'}",
        "",
        "## 5. 何をしたか / What was done",
        "",
        "- 受信したメッセージは保留（parked）し、台帳には適用していません。現在の台帳で確認した結果 / Every message "
        "was parked, not applied; checked against the log now:",
    ]
    lines += [f"  - {_cell(r['incident'])}: {_yes_no(r['in_log_now'])} in the log now" for r in facts["records"]]
    held = done["origins_held_when_raised"]
    lines.append(f"- 検知時に保留中だった送信元 / Agencies on hold when raised: {', '.join(held) or '-'}")
    lines.append(
        "- 現在保留中の送信元 / Agencies on hold now: "
        + (", ".join(f"{h['agency']} ({_cell(h['reason'])})" for h in done["origins_on_hold_now"]) or "-")
    )
    lines.append("- 確認済み / Acknowledged:")
    lines += [
        f"  - {_cell(k['incident'])}: {_cell(k['by'])} at {_cell(k['at'])}: {_cell(k['note'])}"
        for k in done["acknowledged"]
    ] or ["  - -"]
    lines.append(f"- 未確認 / Still open: {', '.join(done['open']) or '-'}")
    lines += ["", "## 6. 次にすること / What to do next", ""]
    for n, step in enumerate(facts["next"], 1):
        lines += [f"{n}. {step['ja']}", f"   {step['en']}"]
    return "\n".join(lines) + "\n"


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by its owner only (0600), replacing what was there."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)  # an existing file keeps its mode through O_CREAT: set it
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        raise StorageError(f"cannot write the report file: {exc.strerror}") from exc
