"""docs/emulator.md's option and fault tables, checked against the code they describe.

The options are those ``blackbox emulator --help`` lists, the faults those of
``blackbox_emulator.faults.Fault``: each is a row of its table, and no row
names one that does not exist. And two of the options' checks: ``--record-dir``
must name a directory, ``-v`` and ``--log-level`` are one choice.
"""

from __future__ import annotations

import re
from pathlib import Path

from blackbox_emulator.faults import Fault

from tests.blackbox_cli._process import run_cli

EMULATOR_PAGE = Path(__file__).resolve().parents[2] / "docs" / "emulator.md"
#: An option as ``--help`` and the table write it: ``-v``, ``--max-frame-size``.
OPTION = re.compile(r"(?<![\w-])(-[a-zA-Z]|--[a-z][a-z-]+)\b")


def table(heading: str, first_column: str) -> list[str]:
    """The first cells of the table under ``heading`` whose first column is ``first_column``."""
    text = EMULATOR_PAGE.read_text(encoding="utf-8")
    section = text[text.index(f"\n{heading}\n") :]
    start = section.index(f"| {first_column} |")
    cells = []
    for line in section[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        cells.append(line.split("|")[1].strip())
    assert cells, f"no rows in the table under {heading}"
    return cells


def help_options() -> set[str]:
    result = run_cli("emulator", "--help")
    assert result.status == 0, result.stderr
    return set(OPTION.findall(result.stdout)) - {"-h", "--help"}


def test_the_option_table_has_every_option_of_help_and_no_other() -> None:
    rows = table("## Running it", "option")
    documented = [option for row in rows for option in OPTION.findall(row)]

    assert len(documented) == len(set(documented)), f"an option has two rows: {documented}"
    assert set(documented) == help_options()


def test_every_option_row_shows_the_option_as_help_spells_it() -> None:
    usage = run_cli("emulator", "--help").stdout
    for row in table("## Running it", "option"):
        for option in OPTION.findall(row):
            assert option in usage
        # ``--port PORT``: the argument's name is the one ``--help`` shows.
        for option, argument in re.findall(r"`(--[a-z-]+) ([A-Z]+)`", row):
            assert f"{option} {argument}" in usage, row


def test_the_fault_table_has_every_fault_and_no_other() -> None:
    rows = table("## Faults", "fault")
    names = [row.strip("`") for row in rows]

    assert names == [fault.value for fault in Fault]


def test_the_option_rows_name_every_fault() -> None:
    (row,) = [row for row in table("## Running it", "option") if row.startswith("`--fault")]
    text = EMULATOR_PAGE.read_text(encoding="utf-8")
    line = next(line for line in text.splitlines() if line.startswith(f"| {row} |"))

    assert set(re.findall(r"`([a-z-]+)`", line)) == {fault.value for fault in Fault}


def test_a_record_dir_that_does_not_exist_is_a_usage_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    result = run_cli("emulator", "--port", "0", "--record-dir", str(missing))

    assert result.status == 2
    assert result.stderr == f"blackbox: --record-dir {missing}: not a directory (create it first)\n"
    assert not missing.exists()


def test_verbose_and_log_level_are_one_choice() -> None:
    result = run_cli("emulator", "--port", "0", "-v", "--log-level", "DEBUG")

    assert result.status == 2
    assert "not allowed with argument" in result.stderr
