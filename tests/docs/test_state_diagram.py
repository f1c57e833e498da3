"""The committed state diagram is the generator's output: it cannot drift from the table."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from blackbox_protocol._state import TABLES, Lifecycle

ROOT = Path(__file__).resolve().parents[2]
GENERATOR = ROOT / "docs" / "gen_state_diagram.py"
PAGE = ROOT / "docs" / "state-diagram.md"


def _render() -> Callable[[], str]:
    spec = importlib.util.spec_from_file_location("gen_state_diagram", GENERATOR)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    render: Callable[[], str] = module.render
    return render


def test_committed_page_is_the_generated_one() -> None:
    assert PAGE.read_text(encoding="utf-8") == _render()(), (
        "docs/state-diagram.md is stale: run `uv run python docs/gen_state_diagram.py`"
    )


def test_check_flag_passes_on_the_committed_page() -> None:
    completed = subprocess.run(
        [sys.executable, str(GENERATOR), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr


def _diagram(page: str, title: str) -> tuple[set[str], set[tuple[str, str, str]]]:
    """The states declared in a section's diagram, and its edges as (from, to, input)."""
    section = page.split(f"## {title}\n", 1)[1].split("```mermaid\n", 1)[1].split("```", 1)[0]
    states: set[str] = set()
    edges: set[tuple[str, str, str]] = set()
    for line in section.splitlines():
        line = line.strip()
        if line.startswith("state "):
            states.add(line.rsplit(" as ", 1)[1])
        elif " --> " in line and ": " in line:
            source, rest = line.split(" --> ", 1)
            target, labels = rest.split(": ", 1)
            edges.update((source, target, label) for label in labels.split(", "))
    return states, edges


def test_every_state_change_of_the_table_is_an_edge_and_nothing_else() -> None:
    page = _render()()
    for lifecycle, title in ((Lifecycle.CHAT, "Chat"), (Lifecycle.VOICE, "Voice")):
        states, edges = _diagram(page, title)
        expected = {
            (state.name, target.name, received.value)
            for state, row in TABLES[lifecycle].items()
            if state.name in states
            for received, target in row.items()
            if target is not state
        }
        assert edges == expected, lifecycle
