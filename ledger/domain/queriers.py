"""The law catalogue's querier texts → the agency kinds that may ask under a row (docs/bodies.md). Re-exported by
``ledger.domain.agencies``; kept free of eventsourcing so the hub checks the same mapping as the nodes."""

from __future__ import annotations

from ledger.domain.types import AgencyKind

__all__ = ["QUERIER_KINDS"]

# The law catalogue's querier texts (情報照会者, as 別表第二 names them) → the agency kinds that may ask under a row
# (docs/bodies.md#who-may-ask-the-querier-kinds). Without it the column is only shown, and a peer agency of another
# kind could ask under any item by typing its number. The kinds are coarse: "national" is every national agency,
# not only the minister the row names (and the 日本年金機構 acting for him). A catalogue row whose querier is not here
# does not load (ConfigurationError), so a new row cannot slip in unchecked.
QUERIER_KINDS: dict[str, frozenset[AgencyKind]] = {
    "市町村長": frozenset({AgencyKind.MUNICIPALITY}),
    # 児童手当法第十七条: civil servants' allowance is paid by their employer; those payers are not modelled here
    "市町村長（児童手当法第十七条第一項の表の下欄に掲げる者を含む。）": frozenset({AgencyKind.MUNICIPALITY}),
    # 別表第一 九の項: 都道府県知事、市長（特別区の区長を含む。）又は福祉に関する事務所を管理する町村長
    "都道府県知事等": frozenset({AgencyKind.PREFECTURE, AgencyKind.MUNICIPALITY}),
    "公営住宅法第二条第十六号に規定する事業主体である都道府県知事又は市町村長": frozenset(
        {AgencyKind.PREFECTURE, AgencyKind.MUNICIPALITY}
    ),
    # the Act's 第十九条 counts as querier whoever a law has do the row's work (the minister's pensions: 日本年金機構)
    "厚生労働大臣": frozenset({AgencyKind.NATIONAL}),
}
