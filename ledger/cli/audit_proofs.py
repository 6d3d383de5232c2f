"""``audit checkpoint``, ``audit head``, ``audit latest-checkpoint``, ``audit prove``, ``audit check-proof``
(offline), ``audit holds``, ``audit release`` (composed into the ``audit`` group by ``ledger.cli.audit``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from ledger.app import Actor
from ledger.app.checkpoints import Checkpoint, sign_checkpoint, sign_head
from ledger.app.checkpoints import latest_checkpoint as latest
from ledger.app.holds import holds as agency_holds
from ledger.app.holds import lift_hold
from ledger.audit.proofs import build_proof
from ledger.audit.proofs import check_proof as check_inclusion
from ledger.cli.base import as_actor, command, node
from ledger.cli.base import out as emit  # (`out` is also the name of the --out option)
from ledger.cli.parsing import WHOLE, argument, option
from ledger.errors import InputError
from ledger.files import write_private


def read_json(path: str) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc}") from exc
    except ValueError as exc:
        raise InputError(f"{path} is not JSON: {exc}") from exc


def load_checkpoint(path: str) -> Checkpoint:
    """A checkpoint kept outside the log: a file from ``audit checkpoint --export`` or a proof file."""
    doc = read_json(path)
    return Checkpoint.from_json(doc.get("checkpoint", doc) if isinstance(doc, dict) else doc)


@command(None, "checkpoint", help="sign a checkpoint (tree size + Merkle root) of the log now")
@option("--agency", default=None, help="the signing agency (default: every hosted agency)")
@option("--force", is_flag=True, help="sign even if nothing new was logged")
@option("--export", default=None, metavar="FILE", help="also write the signed checkpoint to FILE (keep it elsewhere)")
def checkpoint(agency: str | None, force: bool, export: str | None) -> int:
    signed = sign_checkpoint(node().app, agency, force=force)
    if not signed:
        emit({"signed": [], "note": "nothing new since the last checkpoint (use --force to sign anyway)"})
        return 0
    if export:
        write_private(Path(export), json.dumps(signed[-1].to_json(), indent=2) + "\n")
    emit({"signed": [cp.to_json() for cp in signed]})
    return 0


@command(
    None, "head", help="sign a checkpoint if anything is new, then a tree head over the whole log to keep elsewhere"
)
@option("--agency", default=None, help="whose (default: the latest of any hosted agency)")
@option("--out", default=None, metavar="FILE", help="also write it to FILE, to keep outside this node")
def head(agency: str | None, out: str | None) -> int:
    """The node's current signed tree head, to keep outside the log (``audit verify --against FILE``)."""
    app = node().app
    sign_checkpoint(app, agency)  # recorded and published to peers, if anything was logged since the last
    cp = sign_head(app, agency)  # and one over everything, that checkpoint included, to keep elsewhere
    if out:
        Path(out).write_text(json.dumps(cp.to_json(), indent=2) + "\n")
    emit(cp.to_json())
    return 0


@command(None, "latest-checkpoint", help="show (and export) the latest checkpoint held from an agency, own or a peer's")
@option("--agency", default=None, help="whose (default: the latest of any hosted agency)")
@option("--export", default=None, metavar="FILE", help="also write it to FILE, for `audit verify --against FILE`")
def latest_checkpoint(agency: str | None, export: str | None) -> int:
    # a peer holds every checkpoint an agency published: this copy lets that agency check its own log's tail
    cp = latest(node().app, agency)
    if export:
        write_private(Path(export), json.dumps(cp.to_json(), indent=2) + "\n")
    emit(cp.to_json())
    return 0


@command(None, "prove", help="print an inclusion proof of one event against the latest checkpoint")
@argument("event_id", required=False, default=None)
@option("--position", type=WHOLE, default=None, help="or the event's log position")
@option("--agency", default=None, help="whose checkpoint (default: the latest of any hosted agency)")
@option("--out", default=None, metavar="FILE", help="write the proof to FILE instead of stdout")
def prove(event_id: str | None, position: int | None, agency: str | None, out: str | None) -> int:
    if event_id is None and position is None:
        raise InputError("name the event: EVENT_ID or --position N")
    proof = build_proof(node().app, event_id=event_id, position=position, agency=agency)
    text = json.dumps(proof, indent=2, ensure_ascii=False)
    if out:
        write_private(Path(out), text + "\n")
        print(f"wrote {out}", file=sys.stderr)
    else:
        print(text)
    return 0


@command(None, "check-proof", help="verify an inclusion proof offline (no database)")
@argument("file")
@option("--public-key", default=None, help="the agency public key (hex) you trust; default: the file's")
def check_proof(file: str, public_key: str | None) -> int:
    # deliberately opens no node: an auditor checks a proof with only the file (and the key they trust)
    emit(check_inclusion(read_json(file), public_key))
    return 0


@command(None, "holds", help="agencies whose events are held after a checkpoint fork")
def holds() -> int:
    for row in agency_holds(node().app):
        emit(row)
    return 0


@command(None, "release", help="lift the hold on an agency after resolving its checkpoint fork")
@argument("agency")
@option("--note", required=True, help="what was checked, with whom")
@as_actor()
def release(agency: str, note: str, actor: Actor) -> int:
    lift_hold(node().app, actor, agency, note)
    emit(
        {
            "released": agency,
            "next": "replay the messages parked with code agency_held: `flagledger consumers parked`, "
            "then `flagledger consumers replay ID` for each, oldest first",
        }
    )
    return 0
