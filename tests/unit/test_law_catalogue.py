"""The law catalogue (ledger.domain.law): what a query's legal basis permits, loaded from the shipped file."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from ledger.domain.law import _load, catalogue, check_query
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


@pytest.mark.parametrize(
    ("item", "procedure", "info_kind", "code"),
    [
        (199, "児童手当", "地方税関係情報", "unknown_legal_basis"),
        (74, "生活保護", "地方税関係情報", "procedure_not_in_basis"),
        (74, "児童手当", "医療保険給付関係情報", "info_kind_not_permitted"),
        (26, "児童手当", "住民票関係情報", "procedure_not_in_basis"),
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
    """Administrator: a hand-edited file with a duplicate row or an unknown source does not load half."""
    base = {"as_of": "2026-12-07", "note": "n", "sources": {"table2": "t"}}
    row = {"item": 74, "procedure": "児童手当", "procedure_text": "t", "querier": "q", "provider": "p",
           "info_kinds": ["地方税関係情報"], "source": "table2"}  # fmt: skip
    for rows in ([row, row], [{**row, "source": "rumour"}], [{**row, "item": 0}], [{"item": 74}]):
        with pytest.raises(ConfigurationError):
            _load(json.dumps({**base, "rows": rows}))
    assert _load(json.dumps({**base, "rows": [row]})).basis(74).info_kinds == ("地方税関係情報",)
