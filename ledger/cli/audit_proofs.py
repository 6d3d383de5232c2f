"""CLI: ``audit checkpoint``, ``audit head``, ``audit prove``, ``audit check-proof`` (offline), ``audit holds``,
``audit release``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ledger.app.checkpoints import Checkpoint, latest_checkpoint, sign_checkpoint, sign_head
from ledger.app.holds import holds, lift_hold
from ledger.audit.proofs import build_proof, check_proof
from ledger.cli.main import EXTENSIONS, GROUPS, _node, command, out
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


@command("audit checkpoint")
def _checkpoint(args: argparse.Namespace) -> int:
    signed = sign_checkpoint(_node(args).app, args.agency, force=args.force)
    if not signed:
        out({"signed": [], "note": "nothing new since the last checkpoint (use --force to sign anyway)"})
        return 0
    if args.export:
        write_private(Path(args.export), json.dumps(signed[-1].to_json(), indent=2) + "\n")
    out({"signed": [cp.to_json() for cp in signed]})
    return 0


@command("audit head")
def _head(args: argparse.Namespace) -> int:
    """The node's current signed tree head, to keep outside the log (``audit verify --against FILE``)."""
    app = _node(args).app
    sign_checkpoint(app, args.agency)  # recorded and published to peers, if anything was logged since the last
    cp = sign_head(app, args.agency)  # and one over everything, that checkpoint included, to keep elsewhere
    if args.out:
        Path(args.out).write_text(json.dumps(cp.to_json(), indent=2) + "\n")
    out(cp.to_json())
    return 0


@command("audit latest-checkpoint")
def _latest(args: argparse.Namespace) -> int:
    # a peer holds every checkpoint an agency published: this copy lets that agency check its own log's tail
    cp = latest_checkpoint(_node(args).app, args.agency)
    if args.export:
        write_private(Path(args.export), json.dumps(cp.to_json(), indent=2) + "\n")
    out(cp.to_json())
    return 0


@command("audit prove")
def _prove(args: argparse.Namespace) -> int:
    if args.event_id is None and args.position is None:
        raise InputError("name the event: EVENT_ID or --position N")
    proof = build_proof(_node(args).app, event_id=args.event_id, position=args.position, agency=args.agency)
    text = json.dumps(proof, indent=2, ensure_ascii=False)
    if args.out:
        write_private(Path(args.out), text + "\n")
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        print(text)
    return 0


@command("audit check-proof")
def _check_proof(args: argparse.Namespace) -> int:
    # deliberately opens no node: an auditor checks a proof with only the file (and the key they trust)
    out(check_proof(read_json(args.file), args.public_key))
    return 0


@command("audit holds")
def _holds(args: argparse.Namespace) -> int:
    for row in holds(_node(args).app):
        out(row)
    return 0


@command("audit release")
def _release(args: argparse.Namespace) -> int:
    lift_hold(_node(args).app, args.actor, args.agency, args.note)
    out(
        {
            "released": args.agency,
            "next": "replay the messages parked with code agency_held: `flagledger consumers parked`, "
            "then `flagledger consumers replay ID` for each, oldest first",
        }
    )
    return 0


def _register(groups: Any, sub: Any, actor: Any) -> None:
    g = GROUPS["audit"]
    s = sub(g, "checkpoint", "sign a checkpoint (tree size + Merkle root) of the log now")
    s.add_argument("--agency", default=None, help="the signing agency (default: every hosted agency)")
    s.add_argument("--force", action="store_true", help="sign even if nothing new was logged")
    s.add_argument("--export", metavar="FILE", help="also write the signed checkpoint to FILE (keep it elsewhere)")
    s.set_defaults(cmd="audit checkpoint")
    s = sub(g, "head", "sign a checkpoint if anything is new, then a tree head over the whole log to keep elsewhere")
    s.add_argument("--agency", default=None, help="whose (default: the latest of any hosted agency)")
    s.add_argument("--out", metavar="FILE", help="also write it to FILE, to keep outside this node")
    s.set_defaults(cmd="audit head")
    s = sub(g, "latest-checkpoint", "show (and export) the latest checkpoint held from an agency, own or a peer's")
    s.add_argument("--agency", default=None, help="whose (default: the latest of any hosted agency)")
    s.add_argument("--export", metavar="FILE", help="also write it to FILE, for `audit verify --against FILE`")
    s.set_defaults(cmd="audit latest-checkpoint")
    s = sub(g, "prove", "print an inclusion proof of one event against the latest checkpoint")
    s.add_argument("event_id", nargs="?", default=None, help="the event id of the envelope header")
    s.add_argument("--position", type=int, default=None, help="or the event's log position")
    s.add_argument("--agency", default=None, help="whose checkpoint (default: the latest of any hosted agency)")
    s.add_argument("--out", metavar="FILE", help="write the proof to FILE instead of stdout")
    s.set_defaults(cmd="audit prove")
    s = sub(g, "check-proof", "verify an inclusion proof offline (no database)")
    s.add_argument("file")
    s.add_argument("--public-key", default=None, help="the agency public key (hex) you trust; default: the file's")
    s.set_defaults(cmd="audit check-proof")
    sub(g, "holds", "agencies whose events are held after a checkpoint fork").set_defaults(cmd="audit holds")
    s = sub(g, "release", "lift the hold on an agency after resolving its checkpoint fork")
    s.add_argument("agency")
    s.add_argument("--note", required=True, help="what was checked, with whom")
    actor(s)
    s.set_defaults(cmd="audit release")


EXTENSIONS.append(_register)
