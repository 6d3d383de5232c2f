"""The audit report's output: one CSV file per section and the self-contained HTML page built from their rows
(:mod:`ledger.audit.report` decides what goes in). Every value is HTML-escaped; a CSV cell a spreadsheet would run
as a formula is prefixed with ``'``."""

from __future__ import annotations

import csv
import html
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from ledger.errors import NotFoundError
from ledger.files import open_private
from projections.node import NodeParts

__all__ = [
    "Section",
    "StaffNames",
    "csv_cell",
    "esc",
    "flag_list",
    "report_sections",
    "write_html",
    "write_summary",
]

_CSS = """
body{font-family:system-ui,"Hiragino Sans","Noto Sans JP",sans-serif;margin:2em;color:#111;font-size:14px}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.15em;margin-top:2em;border-bottom:1px solid #999}
table{border-collapse:collapse;width:100%;margin:.5em 0}th,td{border:1px solid #bbb;padding:3px 6px;
text-align:left;vertical-align:top;word-break:break-all}th{background:#eee}
.meta td:first-child{font-weight:bold;width:16em}.ok{color:#060;font-weight:bold}.bad{color:#a00;font-weight:bold}
.empty{color:#666;font-style:italic}@media print{body{margin:0}h2{page-break-after:avoid}}
"""

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


class Section:
    """One CSV file plus the rows of one HTML table, both written as rows arrive."""

    def __init__(self, out: Path, name: str, title: str, columns: Sequence[str]) -> None:
        self.name, self.title, self.columns = name, title, list(columns)
        self.path = out / f"{name}.csv"
        self.part = out / f".{name}.html.part"
        self.rows = 0
        self._csv: IO[str] = open_private(self.path, "w", newline="", encoding="utf-8")
        self._html: IO[str] = open_private(self.part, "w", encoding="utf-8")
        self._writer = csv.writer(self._csv)
        self._writer.writerow(self.columns)

    def add(self, row: Sequence[object]) -> None:
        self._writer.writerow([csv_cell(v) for v in row])
        self._html.write("<tr>" + "".join(f"<td>{esc(v)}</td>" for v in row) + "</tr>\n")
        self.rows += 1

    def close(self) -> None:
        self._csv.close()
        self._html.close()

    def write_html(self, fh: IO[str]) -> None:
        fh.write(f'<h2 id="{esc(self.name)}">{esc(self.title)} ({self.rows})</h2>\n')
        if not self.rows:
            fh.write('<p class="empty">none in this period</p>\n')
            return
        fh.write("<table><thead><tr>" + "".join(f"<th>{esc(c)}</th>" for c in self.columns) + "</tr></thead><tbody>\n")
        with self.part.open(encoding="utf-8") as part:
            for line in part:
                fh.write(line)
        fh.write("</tbody></table>\n")


def esc(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def write_html(path: Path, meta: dict[str, str], sections: Sequence[Section], ok: bool) -> None:
    with open_private(path, "w", encoding="utf-8") as fh:
        fh.write('<!DOCTYPE html>\n<html lang="ja"><head><meta charset="utf-8">\n')
        fh.write(
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n"
        )
        fh.write(f"<title>{esc(meta['title'])} {esc(meta['period_from'])} – {esc(meta['period_to'])}</title>\n")
        fh.write(f"<style>{_CSS}</style></head><body>\n")
        fh.write(f"<h1>{esc(meta['title'])}</h1>\n")
        fh.write(f"<p>{esc(meta['node'])}: {esc(meta['period_from'])} – {esc(meta['period_to'])}</p>\n")
        status = '<span class="ok">verified</span>' if ok else '<span class="bad">VERIFICATION FAILED</span>'
        fh.write(f'<p>Log: {status}</p>\n<table class="meta"><tbody>\n')
        for k, v in meta.items():
            fh.write(f"<tr><td>{esc(k.replace('_', ' ').capitalize())}</td><td>{esc(v)}</td></tr>\n")
        fh.write("</tbody></table>\n")
        for s in sections:
            s.write_html(fh)
        fh.write("</body></html>\n")


def write_summary(path: Path, meta: dict[str, str]) -> None:
    """``summary.csv``: one key and value per row."""
    with open_private(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["key", "value"])
        for k, v in meta.items():
            w.writerow([csv_cell(k), csv_cell(v)])


class StaffNames:
    """Staff display names (as enrolled) for the report, looked up once each."""

    def __init__(self, node: NodeParts) -> None:
        self.node = node
        self.cache: dict[tuple[str, str], str] = {}

    def __call__(self, agency: str, staff: str | None) -> str:
        if not staff:
            return ""
        key = (agency, staff)
        if key not in self.cache:
            try:  # staff are local: a peer's are not on this node (nor can their ids be computed here)
                self.cache[key] = self.node.app.staff(agency, staff).name
            except NotFoundError:
                self.cache[key] = ""
        return self.cache[key]


def flag_list(value: Any) -> str:
    return ",".join(sorted(str(f) for f in value or ()))


def report_sections(out_dir: Path) -> dict[str, Section]:
    """The report's sections in their order (``flag_summary`` comes first, ``staff`` from report_staff)."""
    return {
        "flags": Section(
            out_dir,
            "flags",
            "Flags set, released and renewed",
            [
                "time",
                "agency",
                "action",
                "flags",
                "subject",
                "request_id",
                "reason",
                "review_date",
                "applied_by",
                "applied_by_name",
                "position",
            ],
        ),
        "approvals": Section(
            out_dir,
            "approvals",
            "Flag request and number-change decisions and their approvers",
            [
                "time",
                "agency",
                "request_id",
                "step",
                "staff",
                "staff_name",
                "note",
                "request_kind",
                "subject",
                "flags",
                "requested_by",
                "approvals_required",
                "position",
            ],
        ),
        "held": Section(
            out_dir,
            "held",
            "Held provision requests and their outcomes",
            [
                "held_at",
                "provider",
                "request_id",
                "querier",
                "subject",
                "legal_item",
                "procedure",
                "info_kind",
                "applicant",
                "flags_at_hold",
                "proposal",
                "proposed_by",
                "outcome_at_period_end",
                "outcome_now",
                "decided_by",
                "decided_at",
                "position",
            ],
        ),
        "reads": Section(
            out_dir,
            "reads",
            "Reads of protected details",
            ["time", "agency", "staff", "staff_name", "subject", "what", "purpose", "position"],
        ),
        "tokens": Section(
            out_dir,
            "tokens",
            "API tokens issued",
            [
                "time",
                "agency",
                "issued_by",
                "issued_by_name",
                "staff",
                "staff_name",
                "roles",
                "expires_at",
                "token_id",
                "via",
                "position",
            ],
        ),
    }
