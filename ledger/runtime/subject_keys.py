"""Opening a node's per-subject data keys (issue 22; :mod:`ledger.log.datakeys`)."""

from __future__ import annotations

from pathlib import Path

from ledger.app import FlagLedger
from ledger.log.datakeys import DATA_KEYS_FILE, DataKeys
from ledger.runtime.keystore import Keys

__all__ = ["open_data_keys"]


def open_data_keys(data_dir: Path, keys: Keys) -> DataKeys:
    return DataKeys(data_dir / DATA_KEYS_FILE, keys.data_wrapper())


def reapply_erasures(app: FlagLedger) -> int:
    """Destroy again every data key the log records as erased but this node still holds: a backup of the data
    directory taken before an erasure and restored after it brings the keys back; the log's ``Erased`` events
    are what counts (docs/erasure.md). Returns how many keys were destroyed."""
    from ledger.audit.erasures import recorded_erasures

    dk = app.signed_mapper.data_keys
    if dk is None or not dk.path.exists():
        return 0
    destroyed = 0
    for ref, erasure in recorded_erasures(app).items():
        if dk.held([ref]):
            destroyed += dk.destroy(
                [ref], str(erasure["erased_at"]), str(erasure["request"]), str(erasure["approved_by"])
            )
    return destroyed
