"""Settings sections (config file, environment, flags) typed for their dataclass: a kernel helper, because
the app layer's capacity settings and the runtime's configuration both read sections this way."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from ledger.errors import ConfigurationError

__all__ = ["typed_settings"]


def typed_settings(cls: Any, values: dict[str, Any], what: str) -> dict[str, Any]:
    """``values`` (config file, environment, flags) as keyword arguments for the settings dataclass ``cls``:
    each converted to its field's ``int`` or ``str`` type; unknown names and unparsable numbers are refused."""
    names = {f.name for f in fields(cls)}
    unknown = set(values) - names
    if unknown:
        raise ConfigurationError(f"unknown {what} settings: {', '.join(sorted(unknown))}")
    try:
        return {
            f.name: int(values[f.name]) if f.type == "int" else str(values[f.name])
            for f in fields(cls)
            if f.name in values
        }
    except ValueError as exc:
        raise ConfigurationError(f"bad {what} setting: {exc}") from exc
