"""The command line refuses, with exit 2 and the option named, every value over its field's bound, every value
that is not UTF-8 text, and every malformed number or choice, and never echoes what was typed.

Threats: **the perpetrator** (an individual number typed into the wrong option must not come back on the
terminal, in job logs or shell-history scrapers) and **a shell user** (junk typed once is stored for good:
refused before anything runs, and never a traceback).
"""

from __future__ import annotations

from collections.abc import Iterator

import click
import pytest

from ledger.cli import main as cli
from ledger.cli.parsing import CLI_BOUNDS, NUMBER_TYPES, OneOf, hint

SECRET = "1234-5678-9012"
FILLER = "00000000-0000-4000-8000-000000000000"  # fits every positional before the one tested


def _commands() -> Iterator[tuple[list[str], click.Parameter]]:
    """(the sub-command and any positional arguments before this one, the parameter), for every parameter that
    takes a value, of every command, found through Click's own command tree."""

    def walk(c: click.Command, path: list[str]) -> Iterator[tuple[list[str], click.Parameter]]:
        if isinstance(c, click.Group):
            for name, sub in c.commands.items():
                yield from walk(sub, [*path, name])
        before: list[str] = []
        for param in c.params:
            if isinstance(param, click.Option) and (param.is_flag or param.hidden):
                continue
            # an option is refused before any positional is read; a positional needs the ones before it
            yield ([*path] if isinstance(param, click.Option) else [*path, *before]), param
            if isinstance(param, click.Argument):
                before.append(param.type.choices[0] if isinstance(param.type, OneOf) else FILLER)

    yield from walk(cli.cli, [])


ALL = list(_commands())
BOUNDED = [(path, p) for path, p in ALL if p.name in CLI_BOUNDS and not isinstance(p.type, OneOf)]


def _argv(path: list[str], param: click.Parameter, value: str) -> list[str]:
    return [*path, param.opts[-1], value] if isinstance(param, click.Option) else [*path, value]


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as stop:
        cli.main(argv)
    return int(stop.value.code or 0), capsys.readouterr().err


def test_every_text_option_has_a_bound() -> None:
    unbounded = sorted(
        {
            f"{' '.join(path)} {p.name}"
            for path, p in ALL
            if p.name not in CLI_BOUNDS and not isinstance(p.type, OneOf) and p.type not in NUMBER_TYPES
        }
    )
    assert not unbounded, f"add these options to ledger/cli/parsing.py CLI_BOUNDS: {unbounded}"
    assert len(BOUNDED) > 60


@pytest.mark.parametrize(("path", "param"), BOUNDED, ids=[f"{' '.join(p)}:{a.name}" for p, a in BOUNDED])
def test_one_character_over_the_bound_is_exit_2_naming_the_option(
    path: list[str], param: click.Parameter, capsys: pytest.CaptureFixture[str]
) -> None:
    assert param.name is not None
    bound = CLI_BOUNDS[param.name].max
    code, err = _run(_argv(path, param, SECRET + "x" * bound), capsys)
    assert code == 2
    assert f"argument {hint(param)}: " in err, err
    assert f"at most {bound} characters" in err and SECRET not in err and "Traceback" not in err


@pytest.mark.parametrize("junk", ["ab\udcffcd", "\udc80", "tab\x1bescape", "nul\x00"])
def test_text_that_is_not_utf8_or_holds_control_characters_is_exit_2(
    junk: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Invalid UTF-8 in argv reaches Python as surrogate escapes; it used to fail in the JSON encoder with a
    traceback after the command had started."""
    code, err = _run(["case", "open", "--as", "131016/req", "--victim", "123456789018", "--notes", junk], capsys)
    assert code == 2 and "argument --notes" in err and "Traceback" not in err
    assert junk not in err


@pytest.mark.parametrize("item", ["true", "7x", "1234-5678-9012", "1.5"])
def test_a_table_item_that_is_no_whole_number_is_exit_2_without_echo(
    item: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = _run(
        [
            "provision",
            "request",
            "--as",
            "131016/counter",
            "--provider",
            "131024",
            "--subject",
            "123456789018",
            "--item",
            item,
            "--procedure",
            "p",
            "--info-kind",
            "i",
        ],
        capsys,
    )
    assert code == 2 and "argument --item: must be a whole number" in err and item not in err


def test_a_wrong_choice_or_stray_argument_is_not_echoed(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _run(["flag", "request", "--as", "131016/req", "--subject", "123456789018", "--flag", SECRET], capsys)
    assert code == 2 and "argument --flag: choose from" in err and SECRET not in err
    code, err = _run(["flag", "show", "--as", "131016/req", "--subject", "1234", SECRET], capsys)
    assert code == 2 and "1 unrecognized argument(s)" in err and SECRET not in err
    code, err = _run(["flag", "approve", "--as", "131016/apr", SECRET], capsys)
    assert code == 2 and "request_id" in err and SECRET not in err
    code, err = _run(["flag", "show", "--as", SECRET, "--subject", "1"], capsys)
    assert code == 2 and "argument --as" in err and SECRET not in err


def _sample(param: click.Parameter) -> str:
    """A value that parses for ``param``'s type."""
    from ledger.cli import parsing

    if isinstance(param.type, OneOf):
        return param.type.choices[0]
    return {
        parsing.WHOLE: "1",
        parsing.NUMBER: "1",
        parsing.DAY: "2026-01-01",
        parsing.UUID_ID: FILLER,
        parsing.ACTOR: "131016/x",
        parsing.PROPOSAL_VERSION: "1",
        parsing.PARKED_ID: "1",
    }.get(param.type, "x")


REQUIRED = [(path, p) for path, p in ALL if isinstance(p, click.Option) and p.required]


@pytest.mark.parametrize(("path", "param"), REQUIRED, ids=[f"{' '.join(p)}:{a.name}" for p, a in REQUIRED])
def test_a_required_option_left_out_is_exit_2_naming_it(
    path: list[str], param: click.Option, capsys: pytest.CaptureFixture[str], tmp_path: object
) -> None:
    """Every other parameter given: the one left out is refused before anything runs (Click counts a default
    of None as a value, which once made --as optional and the command fail later on a missing actor)."""
    leaf = cli.cli
    for name in path:
        assert isinstance(leaf, click.Group)
        leaf = leaf.commands[name]
    argv = ["--data-dir", f"{tmp_path}/missing", *path]
    for other in leaf.params:
        if isinstance(other, click.Argument):
            argv.append(_sample(other))
        elif other is not param and other.required:
            argv += [other.opts[-1], _sample(other)]
    code, err = _run(argv, capsys)
    assert code == 2 and f"the following arguments are required: {hint(param)}" in err, err
