"""An agency's own reference numbers (宛名番号) for the persons it took in (issue #21): the console names a person
by the number the agency's staff know them by, never by the pseudonym or the individual number.

Kept in the node's operational table ``reference_numbers`` (migration 0008), one per (agency, pseudonym): local to
the agency, never in the log, never sent to the hub or another agency — a peer that learned it could tie the
person to the agency's own records. Another agency's staff never see it (each agency reads only its own rows).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from ledger.errors import InputError
from ledger.runtime.tables import reference_numbers
from projections.base import storage_error

__all__ = ["REFERENCE_MAX", "ReferenceBook", "clean_reference"]

REFERENCE_MAX = 20
# municipal systems number their residents in digits, some with letters or hyphens; never 12 digits alone, which
# is the shape of an individual number (one typed into the wrong field is refused, not kept)
_SHAPE = re.compile(r"[0-9A-Za-z][0-9A-Za-z-]{0,19}")


def clean_reference(text: str) -> str:
    value = text.strip().translate(str.maketrans("０１２３４５６７８９－", "0123456789-"))
    if not _SHAPE.fullmatch(value):
        raise InputError(
            "宛名番号は半角の英数字とハイフン（20文字以内）で入力してください (a reference number: 1–20 letters, "
            "digits or hyphens)",
            field="reference",
        )
    if re.fullmatch(r"\d{12}", value):
        raise InputError(
            "宛名番号に個人番号（12桁）は使えません (an individual number is not a reference number)", field="reference"
        )
    return value


class ReferenceBook:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record(self, agency: str, subject: str, reference: str, staff: str, at: datetime) -> None:
        """Record (or correct) the agency's reference number for the person with pseudonym ``subject``."""
        value = clean_reference(reference)
        t = reference_numbers.c
        row = {"reference": value, "recorded_by": staff, "recorded_at": at.isoformat()}
        try:
            with self.engine.begin() as conn:
                key = (t.agency == agency) & (t.subject == subject)
                taken = conn.execute(
                    select(t.subject).where((t.agency == agency) & (t.reference == value) & (t.subject != subject))
                ).first()
                if taken is not None:
                    raise InputError(
                        "この宛名番号は別の方に登録済みです (the number names another person)", field="reference"
                    )
                if conn.execute(select(t.subject).where(key)).first() is None:
                    conn.execute(reference_numbers.insert().values(agency=agency, subject=subject, **row))
                else:
                    conn.execute(reference_numbers.update().where(key).values(**row))
        except IntegrityError as exc:
            raise InputError("宛名番号を登録できませんでした。もう一度お試しください", field="reference") from exc
        except SQLAlchemyError as exc:
            raise storage_error("cannot keep the reference number", exc) from exc

    def lookup(self, agency: str, subjects: Iterable[str]) -> dict[str, str]:
        """The agency's reference numbers for those of ``subjects`` it recorded (pseudonym → 宛名番号)."""
        wanted = sorted(set(subjects))
        if not wanted:
            return {}
        t = reference_numbers.c
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(select(t.subject, t.reference).where((t.agency == agency) & t.subject.in_(wanted)))
                return {str(s): str(r) for s, r in rows}
        except SQLAlchemyError as exc:
            raise storage_error("cannot read the reference numbers", exc) from exc
