"""The law catalogue (ledger.domain.law): what a query's legal basis permits, who may ask under it and who may be
asked, loaded from the shipped file."""

from __future__ import annotations

import json
from datetime import date
from importlib import resources

import pytest

from ledger.domain.agencies import QUERIER_KINDS
from ledger.domain.answers import AnswerPolicy, ManualKind
from ledger.domain.law import _load, catalogue, check_query
from ledger.domain.types import AgencyKind
from ledger.errors import ConfigurationError, InputError, RuleViolation


def test_the_shipped_catalogue_loads_and_documents_itself() -> None:
    """Peer agency: every row names its source (the table or the ordinance that replaced it) and the seed's
    item 74 is there as the seed describes it; the file says it is a subset."""
    cat = catalogue()
    raw = json.loads(resources.files("ledger.domain").joinpath("data/law_catalogue.json").read_text("utf-8"))
    assert raw["subset"] is True and "subset" in cat.note and {"table2", "ordinance"} <= set(cat.sources)
    assert all(row.source in cat.sources for row in cat.rows.values())
    row = cat.basis(74)
    assert row.procedure == "児童手当" and "地方税関係情報" in row.info_kinds and row.confirmed_by
    assert catalogue() is cat  # loaded once


def test_every_row_names_its_source_date_procedure_and_kinds_and_a_confirmed_row_its_url() -> None:
    """Peer agency: a row is what lets a query through, so none may stand on nothing — each names its source
    (in force from/until), its procedure and the law's text of it, the information kinds and who may ask; a row
    checked against a source text names where (an https URL) and when (the retrieval date, not in the future)."""
    cat = catalogue()
    assert len(cat.rows) >= 5
    for row in cat.rows.values():
        assert row.source in cat.sources and any(ch.isdigit() for ch in cat.sources[row.source])
        assert row.procedure and row.procedure_text.endswith("事務であって主務省令で定めるもの")
        assert row.info_kinds and all(k.endswith("情報") for k in row.info_kinds)
        assert row.querier and row.querier_kinds and row.provider and row.provider_kinds
        assert row.confirmed_by, f"item {row.item}: every shipped row is checked against a source text"
        assert row.url is not None and row.url.startswith("https://")
        assert row.retrieved is not None and date.fromisoformat(row.retrieved) <= date.fromisoformat(cat.as_of)
        assert row.ordinance_item is None or row.ordinance_item > 0  # null until found in the ordinance's text


def test_the_pension_row_is_asked_by_a_national_agency_only() -> None:
    """Peer agency: the pension office (a national agency, acting for 厚生労働大臣) asks under item 48 国民年金;
    a municipality cannot borrow that item, and the pension office cannot borrow a municipality's item 74."""
    row = check_query(48, "国民年金", "地方税関係情報", AgencyKind.NATIONAL.value)
    assert row.querier == "厚生労働大臣" and row.querier_kinds == (AgencyKind.NATIONAL.value,)
    for item, procedure, kind in ((48, "国民年金", AgencyKind.MUNICIPALITY), (74, "児童手当", AgencyKind.NATIONAL)):
        with pytest.raises(RuleViolation) as refused:
            check_query(item, procedure, "地方税関係情報", kind.value)
        assert refused.value.code == "querier_not_in_basis"
        assert kind.value in str(refused.value) and catalogue().basis(item).querier in str(refused.value)


@pytest.mark.parametrize("kind", list(AgencyKind))
def test_the_querier_kind_is_checked_on_every_row(kind: AgencyKind) -> None:
    """Peer agency, each kind in turn (a protection body or the police included): on every row it may ask
    exactly where the row's querier maps to its kind, and is refused with ``querier_not_in_basis`` elsewhere —
    before the procedure or the information kind is looked at."""
    for row in catalogue().rows.values():
        if kind.value in row.querier_kinds:
            assert check_query(row.item, row.procedure, row.info_kinds[0], kind.value) is row
        else:
            with pytest.raises(RuleViolation) as refused:
                check_query(row.item, "another procedure", "another kind", kind.value)
            assert refused.value.code == "querier_not_in_basis"
    assert check_query(74, "児童手当", "地方税関係情報", None).item == 74  # kind unknown to the caller: basis only


@pytest.mark.parametrize("kind", list(AgencyKind))
def test_the_provider_kind_is_checked_on_every_row(kind: AgencyKind) -> None:
    """Peer agency, each kind in turn as the agency asked (a support centre answering a 市町村長 item, a
    prefecture asked for a municipality's tax data): on every row it passes exactly where the row's provider
    maps to its kind, and is refused elsewhere with ``provider_not_in_basis``, a message naming the item and the
    kinds the law gives it (and no person: the check has none to name)."""
    for row in catalogue().rows.values():
        querier = row.querier_kinds[0]
        if kind.value in row.provider_kinds:
            assert check_query(row.item, row.procedure, row.info_kinds[0], querier, kind.value) is row
        else:
            with pytest.raises(RuleViolation) as refused:
                check_query(row.item, row.procedure, row.info_kinds[0], querier, kind.value)
            message = str(refused.value)
            assert refused.value.code == "provider_not_in_basis"
            assert f"legal_item {row.item}" in message and row.provider in message
            assert all(k in message for k in row.provider_kinds) and f"of kind {kind.value}" in message
    assert check_query(74, "児童手当", "地方税関係情報", "municipality", None).item == 74  # unknown: basis only


def test_a_support_centre_may_not_answer_a_municipality_item_nor_a_municipality_be_refused() -> None:
    """Peer agency: a support centre (a protection body, 情報提供者 of no row) answering item 74, whose provider is
    市町村長, is refused; the same query to a municipality passes. Both kinds checked: a querier of the wrong kind
    is still refused with its own code first."""
    with pytest.raises(RuleViolation) as refused:
        check_query(74, "児童手当", "地方税関係情報", "municipality", AgencyKind.SUPPORT_CENTRE.value)
    assert refused.value.code == "provider_not_in_basis" and "市町村長" in str(refused.value)
    assert check_query(74, "児童手当", "地方税関係情報", "municipality", "municipality").provider_kinds == (
        "municipality",
    )
    with pytest.raises(RuleViolation) as refused:
        check_query(74, "児童手当", "地方税関係情報", "support_centre", "support_centre")
    assert refused.value.code == "querier_not_in_basis"


def test_the_querier_mapping_covers_the_catalogue_and_no_body_asks() -> None:
    """Peer agency: every querier text of the catalogue maps to agency kinds, and none of them to a protection
    body (a support centre, a child guidance centre or the police is no 情報照会者 of these rows)."""
    assert {row.querier for row in catalogue().rows.values()} <= set(QUERIER_KINDS)
    assert {row.provider for row in catalogue().rows.values()} <= set(QUERIER_KINDS)  # and none is a body
    assert all(not k.is_protection_body for kinds in QUERIER_KINDS.values() for k in kinds)
    assert QUERIER_KINDS["都道府県知事等"] == {AgencyKind.PREFECTURE, AgencyKind.MUNICIPALITY}


@pytest.mark.parametrize(
    ("item", "procedure", "info_kind", "code"),
    [
        (199, "児童手当", "地方税関係情報", "unknown_legal_basis"),
        (74, "生活保護", "地方税関係情報", "procedure_not_in_basis"),
        (74, "児童手当", "医療保険給付関係情報", "info_kind_not_permitted"),
        (26, "児童手当", "住民票関係情報", "procedure_not_in_basis"),
        (74, "児童手当", "住民票関係情報", "info_kind_not_permitted"),  # item 74 permits local-tax information only
    ],
)
def test_a_query_beyond_its_basis_is_refused_with_its_reason(
    item: int, procedure: str, info_kind: str, code: str
) -> None:
    """Peer agency: asking under another item, for another procedure, or for information the item does not
    permit is a rule refusal naming why, never an answer."""
    with pytest.raises(RuleViolation) as refused:
        check_query(item, procedure, info_kind)
    assert refused.value.code == code


@pytest.mark.parametrize("item", [True, 0, 201, "74", 74.0])
def test_a_malformed_item_is_bad_input_before_the_catalogue(item: object) -> None:
    """Shell user: JSON true is not item 1; the range is checked before any lookup."""
    with pytest.raises(InputError) as refused:
        check_query(item, "児童手当", "地方税関係情報")
    assert refused.value.field == "legal_item"


def test_oversize_text_is_refused_as_oversize_not_as_unknown() -> None:
    """Shell user: an oversize procedure keeps its own code (the bounds first), and is not echoed."""
    with pytest.raises(InputError) as refused:
        check_query(74, "x" * 201, "地方税関係情報")
    assert refused.value.code == "oversize" and "x" * 20 not in str(refused.value)


def test_a_broken_catalogue_is_a_configuration_error() -> None:
    """Administrator: a hand-edited file with a duplicate row, an unknown source, a querier no agency kind is
    mapped to, a provider no agency kind is mapped to, no information kind, or a confirmation without its URL or
    date does not load half."""
    base = {"as_of": "2026-12-07", "note": "n", "sources": {"table2": "t"}}
    row = {"item": 74, "procedure": "児童手当", "procedure_text": "t", "querier": "市町村長", "provider": "市町村長",
           "info_kinds": ["地方税関係情報"], "source": "table2"}  # fmt: skip
    seen = {"confirmed_by": "item 74 of the table", "url": "https://example.org/t", "retrieved": "2026-12-07"}
    broken = (
        [row, row],
        [{**row, "source": "rumour"}],
        [{**row, "item": 0}],
        [{"item": 74}],
        [{**row, "querier": "q"}],  # a querier text not mapped: its kind could not be checked
        [{**row, "provider": "p"}],  # nor a provider's
        [{**row, "info_kinds": []}],
        [{**row, "procedure": " "}],
        [{**row, **seen, "url": None}],  # confirmed, but not where
        [{**row, **seen, "url": "http://example.org/t"}],
        [{**row, **seen, "retrieved": "yesterday"}],
        [{**row, "url": "https://example.org/t"}],  # a URL with no confirmation
    )
    for rows in broken:
        with pytest.raises(ConfigurationError):
            _load(json.dumps({**base, "rows": rows}))
    loaded = _load(json.dumps({**base, "rows": [row, {**row, **seen, "item": 31}]}))
    assert loaded.basis(74).info_kinds == ("地方税関係情報",) and loaded.basis(74).querier_kinds == ("municipality",)
    assert loaded.basis(74).provider_kinds == ("municipality",)
    assert loaded.basis(31).url == seen["url"] and loaded.basis(74).url is None


@pytest.mark.parametrize(
    ("kind", "value", "code"),
    [
        (ManualKind.LEGAL_ITEM, "199", "unknown_legal_basis"),
        (ManualKind.PROCEDURE, "児童手当 ", "procedure_not_in_basis"),  # a trailing space never matches a query
        (ManualKind.INFO_KIND, "住民票", "info_kind_not_permitted"),
    ],
)
def test_a_policy_naming_what_no_query_can_carry_is_refused(kind: ManualKind, value: str, code: str) -> None:
    """Administrator (or a typo): a provider marking an item, procedure or information kind "answered by hand"
    that is not in the catalogue would never match a query — the person believes it is answered by hand while
    it is answered automatically. Refused with the catalogue's code; a catalogue value is accepted."""
    policy = AnswerPolicy(agency="131016", by="admin")
    with pytest.raises(RuleViolation) as refused:
        policy.mark_manual(kind, value, by="admin")
    assert refused.value.code == code and policy.manual[kind.value] == []
    good = {ManualKind.LEGAL_ITEM: "48", ManualKind.PROCEDURE: "国民年金", ManualKind.INFO_KIND: "住民票関係情報"}[kind]
    policy.mark_manual(kind, good, by="admin")
    assert policy.manual[kind.value] == [good]
