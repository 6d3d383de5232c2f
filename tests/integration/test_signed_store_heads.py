"""The store's cache of stream heads stays bounded (least recently saved out first) and is only a shortcut:
a stream whose head was evicted still chains, from the head read back from the database."""

from __future__ import annotations

from ledger.audit.verify import verify_log
from ledger.domain.provision import ProvisionRequest
from ledger.runtime.bootstrap import AgencySpec
from tests.conftest import A, B, NodeFactory


def test_the_heads_cache_is_bounded_and_evicted_streams_still_chain(make_node: NodeFactory) -> None:
    node = make_node((AgencySpec(B, "B市", "municipality"),), staff=False)
    store = node.app.signed_store
    store._heads_cache = 3
    store.forget()
    requests = [
        ProvisionRequest(
            agency=B,
            querier=A,
            subject=f"p{i:032x}",
            legal_item=74,
            procedure="児童手当",
            info_kind="地方税関係情報",
            applicant="unknown",
        )
        for i in range(5)
    ]
    node.app.save_as(B, *requests)
    assert list(store._heads) == [r.id for r in requests[2:]]  # the last three saved, oldest first
    first = node.app.load(ProvisionRequest, requests[0].id, "request")
    store.forget()
    first.provide_automatically()
    node.app.save_as(B, first)  # head read back from the store, not the cache
    assert store._heads[first.id][0] == 2
    report = verify_log(node.app)
    assert report.ok, report.first_bad


def test_saving_nothing_records_nothing(make_node: NodeFactory) -> None:
    node = make_node((AgencySpec(B, "B市", "municipality"),), staff=False)
    before = node.app.max_position()
    assert node.app.save_as(B) == []
    assert node.app.signed_mapper.seal([], B, {}) == []
    assert node.app.max_position() == before
