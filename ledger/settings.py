"""Typed settings of one config.json section, overridden by the environment, overridden in turn by options.

Every section (``kafka``, ``http``, ``capacity``, ``observability``, ``checkpoints``, ``keys``) is a
:class:`Section`: a pydantic-settings model whose fields are the settings, whose environment variables are the
documented ``FLAGLEDGER_*`` names (a prefix, or a field's ``validation_alias``), and whose values are checked
by pydantic. :meth:`Section.load` takes the section as read from the data directory's config.json and the
command's options; precedence is option > environment > config file > default.

A value pydantic cannot read becomes a :class:`~ledger.errors.ConfigurationError` naming the section, the
setting and where it can be set, never the value (it may be a secret) and never a pydantic traceback.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Self

from pydantic import AliasGenerator, BeforeValidator, ValidationError
from pydantic_settings import BaseSettings, InitSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

from ledger.errors import ConfigurationError

__all__ = ["Flag", "Section", "section_config"]

_TRUE, _FALSE = ("1", "on", "true", "yes"), ("0", "off", "false", "no", "")
# the config file's values travel to the source that ranks below the environment under this init key
_FILE_KEY = "__config_file__"


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError("must be on or off")


# on/off as an operator writes it; anything else is refused, never read as one or the other
Flag = Annotated[bool, BeforeValidator(_flag)]


def section_config(env_prefix: str = "", *, env_ignore_empty: bool = False) -> SettingsConfigDict:
    """The model configuration of a section: each field read from ``env_prefix`` + its name in capitals (unless
    it names its variable, ``validation_alias``), exactly so spelled; unknown names refused; frozen."""
    return SettingsConfigDict(
        # the exact variable names: a lower-case look-alike is not read (the demo clears FLAGLEDGER_* alone)
        case_sensitive=True,
        alias_generator=AliasGenerator(validation_alias=lambda name: env_prefix + name.upper()),
        env_ignore_empty=env_ignore_empty,
        extra="forbid",
        frozen=True,
        coerce_numbers_to_str=True,  # a number in config.json where text is expected is that text, as before
        validate_by_name=True,
        validate_by_alias=True,
    )


class Section(BaseSettings):
    """One config.json section with its environment overrides."""

    section: ClassVar[str] = ""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # no .env file and no secrets directory: the config file and the environment are the only places. A
        # section made directly (``KafkaSettings(topic=...)``) is the plain value it names: only load() reads them
        assert isinstance(init_settings, InitSettingsSource)
        given = dict(init_settings.init_kwargs)
        if _FILE_KEY not in given:
            return (init_settings,)
        from_file = given.pop(_FILE_KEY)
        return (
            InitSettingsSource(settings_cls, given),
            env_settings,
            InitSettingsSource(settings_cls, dict(from_file)),
        )

    @classmethod
    def load(cls, from_file: Mapping[str, Any] | None = None, **options: Any) -> Self:
        """The settings from ``from_file`` (the config.json section), the environment and ``options`` (a
        command's flags; ``None`` means not given)."""
        given = {name: value for name, value in options.items() if value is not None}
        try:
            return cls(**{_FILE_KEY: dict(from_file or {})}, **given)
        except ValidationError as exc:
            raise ConfigurationError(cls.explain(exc)) from None

    @classmethod
    def env_name(cls, name: str) -> str:
        return str(cls.model_fields[name].validation_alias)

    @classmethod
    def env_names(cls) -> set[str]:
        """The environment variables this section reads."""
        return {cls.env_name(name) for name in cls.model_fields}

    @classmethod
    def explain(cls, exc: ValidationError) -> str:
        by_alias = {
            str(f.validation_alias): name for name, f in cls.model_fields.items() if isinstance(f.validation_alias, str)
        }
        unknown = sorted(str(e["loc"][0]) for e in exc.errors() if e["type"] == "extra_forbidden" and e["loc"])
        if unknown:
            return f"unknown {cls.section} settings: {', '.join(unknown)}"
        problems = []
        for error in exc.errors():
            name = str(error["loc"][0]) if error["loc"] else "?"
            name = by_alias.get(name, name)
            where = f" ({cls.env_name(name)})" if name in cls.model_fields else ""
            message = str(error["msg"]).removeprefix("Value error, ")
            problems.append(f"{name}{where}: {message}")
        return f"bad {cls.section} setting {'; '.join(problems)}"
