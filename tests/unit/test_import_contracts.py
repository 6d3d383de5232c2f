"""The import-linter contract for the domain (issue 17) catches the persistence side of eventsourcing, which the
built-in ``forbidden`` contract cannot name: an insider's or a careless refactor's ``from eventsourcing.persistence
import …`` in ``ledger/domain`` would tie the rules to a store. Checked on hand-made graphs, so it could fail."""

from __future__ import annotations

import grimp

from tests.support.import_contracts import ForbiddenExternalSubmodules


def _graph(line: str) -> grimp.ImportGraph:
    graph = grimp.ImportGraph()
    graph.add_module("ledger")
    graph.add_module("ledger.domain")
    graph.add_module("ledger.domain.flags")
    graph.add_module("eventsourcing", is_squashed=True)
    graph.add_import(importer="ledger.domain.flags", imported="eventsourcing", line_number=7, line_contents=line)
    return graph


def _contract() -> ForbiddenExternalSubmodules:
    return ForbiddenExternalSubmodules(
        name="domain",
        session_options={"root_packages": ["ledger"]},
        contract_options={"source_modules": ["ledger.domain"], "forbidden_modules": ["eventsourcing.persistence"]},
    )


def test_the_domain_importing_eventsourcing_persistence_breaks_the_contract() -> None:
    for line in (
        "from eventsourcing.persistence import Mapper",
        "import eventsourcing.persistence",
        "from eventsourcing.persistence.x import y",
    ):
        check = _contract().check(_graph(line), verbose=False)
        assert not check.kept, line
        assert check.metadata["found"] == [f"ledger.domain.flags:7 {line}"]


def test_the_domain_importing_eventsourcing_domain_keeps_it() -> None:
    for line in ("from eventsourcing.domain import Aggregate, event", "from eventsourcing.persistent import x"):
        assert _contract().check(_graph(line), verbose=False).kept, line
