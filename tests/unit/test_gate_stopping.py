"""SIGTERM with a queue of requests: those still waiting for their turn are told at once that nothing was done.

Threat: the administrator and the shell user (every acknowledged act is recorded, and an answer never claims
less or more than what happened). Under full load a queued request used to sit until the graceful-shutdown time
ran out, then uvicorn cancelled it and answered 500 — an outage to the staff member, who could not tell whether
the flag request went in. Now a waiting request gets 503 ``stopping`` (Retry-After) the moment SIGTERM comes, it
never reaches the routers, and the requests already admitted finish.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.types import Receive, Scope, Send

from ledger.api.gate import STOPPING_BODY, ConcurrencyGate, stop_admitting
from ledger.errors import Code


class Slow:
    """An app whose requests each wait for their own go-ahead, recording which ones it ran."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.go: dict[str, asyncio.Event] = {}
        self.after: dict[str, Any] = {}  # called as a request's answer is sent, before the gate's release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        name = scope["path"]
        self.started.append(name)
        await self.go.setdefault(name, asyncio.Event()).wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": name.encode()})
        if name in self.after:
            self.after[name]()


async def _call(gate: ConcurrencyGate, path: str) -> tuple[int, dict[str, Any] | str, dict[bytes, bytes]]:
    sent: list[dict[str, Any]] = []

    async def send(message: Any) -> None:
        sent.append(message)

    async def receive() -> Any:
        return {"type": "http.request", "body": b""}

    await gate({"type": "http", "path": path}, receive, send)
    status = sent[0]["status"]
    headers = dict(sent[0]["headers"])
    body = sent[1]["body"]
    return status, (json.loads(body) if status == 503 else body.decode()), headers


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_on_stop_waiting_requests_are_answered_503_and_admitted_ones_finish() -> None:
    async def story() -> None:
        app = Slow()
        gates: list[ConcurrencyGate] = []
        gate = ConcurrencyGate(app, 2, gates=gates)  # type: ignore[arg-type]
        calls = [asyncio.create_task(_call(gate, f"/r{i}")) for i in range(6)]
        await _settle()
        assert app.started == ["/r0", "/r1"] and gate.waiting == 4

        class Served:
            state = type("State", (), {"gates": gates})()

        stop_admitting(Served())  # what the server's shutdown does first on SIGTERM
        await _settle()
        assert all(task.done() for task in calls[2:]), "the waiting requests were answered at once"
        for task in calls[2:]:
            status, body, headers = task.result()
            assert status == 503 and body == STOPPING_BODY and body["code"] == Code.STOPPING
            assert headers[b"retry-after"] == b"5"
        # a request arriving afterwards (a pipelined one) is not started either
        status, _, _ = await _call(gate, "/late")
        assert status == 503
        assert app.started == ["/r0", "/r1"], "no refused request reached the routers"
        # the admitted requests finish normally
        for name in ("/r0", "/r1"):
            app.go.setdefault(name, asyncio.Event()).set()
        assert [(await t)[:2] for t in calls[:2]] == [(200, "/r0"), (200, "/r1")]
        assert gate.running == 0 and gate.waiting == 0

    asyncio.run(story())


def test_turns_are_first_come_first_served_and_a_client_leaving_the_queue_loses_no_slot() -> None:
    async def story() -> None:
        app = Slow()
        gate = ConcurrencyGate(app, 1)  # type: ignore[arg-type]
        first = asyncio.create_task(_call(gate, "/a"))
        await _settle()
        queued = [asyncio.create_task(_call(gate, f"/q{i}")) for i in range(3)]
        await _settle()
        queued[0].cancel()  # its client hung up while waiting
        await _settle()
        app.go.setdefault("/a", asyncio.Event()).set()
        await first
        await _settle()
        assert app.started == ["/a", "/q1"], "the next in line got the slot, the one who left did not"
        app.go.setdefault("/q1", asyncio.Event()).set()
        app.go.setdefault("/q2", asyncio.Event()).set()
        assert (await queued[1])[0] == 200 and (await queued[2])[0] == 200
        assert app.started == ["/a", "/q1", "/q2"]
        assert gate.running == 0 and gate.waiting == 0

    asyncio.run(story())


def test_a_slot_handed_over_to_a_request_cancelled_in_the_same_moment_is_passed_on() -> None:
    async def story() -> None:
        app = Slow()
        gate = ConcurrencyGate(app, 1)  # type: ignore[arg-type]
        first = asyncio.create_task(_call(gate, "/a"))
        await _settle()
        second = asyncio.create_task(_call(gate, "/b"))
        third = asyncio.create_task(_call(gate, "/c"))
        await _settle()
        # /b's client hangs up in the very step /a's release hands /b the slot: the cancel is queued just
        # before /b's wake-up, so /b resumes already given the turn and cancelled
        app.after["/a"] = lambda: asyncio.get_running_loop().call_soon(second.cancel)
        app.go.setdefault("/a", asyncio.Event()).set()
        await first
        await _settle()
        assert second.cancelled()
        assert app.started == ["/a", "/c"], "the slot went on to /c instead of being lost"
        app.go.setdefault("/c", asyncio.Event()).set()
        assert (await third)[0] == 200
        assert gate.running == 0

    asyncio.run(story())
