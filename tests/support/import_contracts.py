"""An import-linter contract for parts of an external package: the built-in ``forbidden`` contract sees only
``eventsourcing`` as a whole, but the domain may use ``eventsourcing.domain`` (aggregates, events) and must not
reach the persistence side (``eventsourcing.persistence``: recorders, mappers), so its imports are read line by line.
"""

from __future__ import annotations

from typing import Any

from importlinter.application import output
from importlinter.domain import fields
from importlinter.domain.contract import Contract, ContractCheck


class ForbiddenExternalSubmodules(Contract):
    """``source_modules`` (and their descendants) must not import any of ``forbidden_modules`` (dotted names
    inside external packages, e.g. ``eventsourcing.persistence``)."""

    source_modules = fields.ListField(subfield=fields.StringField())
    forbidden_modules = fields.ListField(subfield=fields.StringField())

    def check(self, graph: Any, verbose: bool) -> ContractCheck:
        found: list[str] = []
        sources = {m for s in self.source_modules for m in {str(s)} | graph.find_descendants(str(s))}
        for forbidden in map(str, self.forbidden_modules):
            top = forbidden.split(".")[0]
            for importer in sorted(sources):
                if not graph.direct_import_exists(importer=importer, imported=top):
                    continue
                for detail in graph.get_import_details(importer=importer, imported=top):
                    line = " ".join(detail["line_contents"].replace(",", " ").split())
                    if (
                        f" {forbidden} " in f" {line} "
                        or f" {forbidden}." in f" {line}"
                        or line.startswith(f"from {forbidden} ")
                    ):
                        found.append(f"{importer}:{detail['line_number']} {detail['line_contents']}")
        return ContractCheck(kept=not found, metadata={"found": found})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for line in check.metadata["found"]:
            output.print_error(line, bold=False)
            output.new_line()
