"""Incidents over HTTP: the holder's queue lists them (to those who act on them), the console's home page
counts them in a red banner, and acknowledging one is a command with the usual refusals: 403 for the wrong
role, 404 for another agency's, 409 for a second time."""

from __future__ import annotations

from collections.abc import Callable

from consumers.ingest import ingest
from consumers.parked import park
from ledger.runtime.bootstrap import Node
from tests.conftest import A, B
from tests.integration.test_api_commands import NAR, ND, Api
from tests.integration.test_api_console import signed_in
from tests.support.forgery import published, tampered


def test_the_holder_sees_and_acknowledges_an_incident_over_http(sqlite_node: Node, person: Callable[[], str]) -> None:
    """Threat: a peer agency's forged release of X's protection (parked on B's node), and insiders of the wrong
    role or agency who would read or silence the alert."""
    api, x = Api(sqlite_node), person()
    api.protect(B, x, [ND, NAR])
    forged = tampered(published(sqlite_node, B, "Protection.FlagsSet"))
    [incident] = park(sqlite_node, ingest(sqlite_node.app, forged), forged, "flagledger.events/0@5")
    iid = str(incident.id)

    queue = api.get(f"{B}/rev", "/queue")
    assert [(i["incident_id"], i["kind"]) for i in queue["incidents"]] == [(iid, "forged_signature")]
    assert queue["incidents"][0]["subjects"] == [sqlite_node.app.subject(x)] and queue["incidents_open"] == 1
    for who in (f"{B}/counter", f"{A}/rev"):
        other = api.get(who, "/queue")
        assert other["incidents"] == [] and other["incidents_open"] == 0

    home = signed_in(sqlite_node, B, "rev")[0].get("/console/").text
    assert "未確認のセキュリティ事案 1 件" in home and sqlite_node.app.subject(x) not in home  # counted, not listed
    assert "セキュリティ事案" not in signed_in(sqlite_node, B, "counter")[0].get("/console/").text

    path = f"/incidents/{iid}/acknowledge"
    assert api.post(f"{B}/counter", path, {"note": "見た"}, 403)["code"] == "role_not_permitted"
    assert B not in str(api.post(f"{A}/rev", path, {"note": "見た"}, 404))
    assert api.post(f"{B}/rev", path, {"note": "x" * 2001}, 422)
    done = api.post(f"{B}/rev", path, {"note": "本人の安全を確認し、B市の担当者へ連絡"})
    assert done["incident_id"] == iid and done["acknowledged_by"] == f"{B}/rev" and done["acknowledged_at"]
    assert api.post(f"{B}/admin", path, {"note": "again"}, 409)["code"] == "conflict"
    after = api.get(f"{B}/rev", "/queue")
    assert after["incidents"] == [] and after["incidents_open"] == 0
    assert "セキュリティ事案" not in signed_in(sqlite_node, B, "rev")[0].get("/console/").text
