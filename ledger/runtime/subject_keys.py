"""Opening a node's per-subject data keys (issue 22; :mod:`ledger.log.datakeys`)."""

from __future__ import annotations

from pathlib import Path

from ledger.log.datakeys import DATA_KEYS_FILE, AesKek, DataKeys
from ledger.runtime.keystore import Keys

__all__ = ["open_data_keys"]


def open_data_keys(data_dir: Path, keys: Keys) -> DataKeys:
    return DataKeys(data_dir / DATA_KEYS_FILE, AesKek(keys.data_kek))
