"""The cut-over from old-format number links (issue 21), from config.json's ``linkage.number_links`` section,
overridden by the environment:

* ``old_format_refused_from`` (``FLAGLEDGER_NUMBER_LINKS_OLD_FORMAT_REFUSED_FROM``, default **unset**): an ISO
  date-time with its offset (``2027-01-04T00:00:00+09:00``). A peer's link in the old format (``PseudonymLink``
  ``class_version`` 1: no named ``residence_move``) whose signed time is at or after it is parked
  ``old_link_format``: since every node writes the named move, such a link comes from a node running old code
  or one that stripped the field to backdate past a move recorded elsewhere (docs/operations.md, "Number
  changes"). Before it, old-format links are judged by their date, as before — except that a move recorded
  at or after the cut-over counts against them whatever its date (a link dated before the cut-over cannot
  have been made after a move recorded since: a stripped link backdated to get under the cut-over).

Unset keeps the old behaviour: a fleet mid-upgrade has nodes still writing the old format, whose genuine links
a cut-over would park. Set it (the same value at every node) once every peer runs a release that names the move.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from pydantic import AwareDatetime

from ledger.errors import ConfigurationError
from ledger.settings import Section, section_config

__all__ = ["NumberLinkSettings"]


class NumberLinkSettings(Section):
    model_config = section_config("FLAGLEDGER_NUMBER_LINKS_", env_ignore_empty=True)
    section: ClassVar[str] = "linkage.number_links"

    # aware only: a naive time would be read in whatever zone each node runs, and the nodes would disagree
    old_format_refused_from: AwareDatetime | None = None

    @classmethod
    def from_linkage(cls, linkage: dict[str, Any], **options: Any) -> NumberLinkSettings:
        raw = linkage.get("number_links", {})
        if not isinstance(raw, dict):
            raise ConfigurationError("config.json's linkage.number_links must be an object")
        return cls.load(raw, **options)

    def cutover(self) -> datetime | None:
        """The cut-over, or None when old-format links are judged by their date whenever signed."""
        return self.old_format_refused_from
