"""Agent scripts: the file format, its validation, and the shipped scripts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from blackbox_emulator import AgentScript, ScriptError, ToolSpec, Turn
from blackbox_emulator._template import Placeholder, parse, render

EXAMPLES = Path(__file__).parents[2] / "examples" / "agents"

FULL_TOML = """
greeting = ["Hi ", "{data.name}!"]
echo_user = false
chunk_delay = 0.25
default_reply = "Pardon?"
farewell = ["Bye."]
max_turns = 3

[[turns]]
match = "(?i)order (?P<number>\\\\d+)"
tool = { name = "find_order", args = { number = "{number}", nested = ["{text}", 1] } }
reply = ["Order {number}: ", "{tool_result.status}"]

[[turns]]
reply = ["Anything else?"]
end = true

[result]
status = "Completed"
summary = "kept as an extra field"
"""


def test_a_full_toml_script_loads(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(FULL_TOML)

    script = AgentScript.load(path)

    assert script.greeting == ("Hi ", "{data.name}!")
    assert script.echo_user is False
    assert script.chunk_delay == 0.25
    assert script.default_reply == ("Pardon?",)
    assert script.farewell == ("Bye.",)
    assert script.max_turns == 3
    first, second = script.turns
    assert first.match == r"(?i)order (?P<number>\d+)"
    assert first.tool == ToolSpec("find_order", {"number": "{number}", "nested": ["{text}", 1]})
    assert second == Turn(reply=("Anything else?",), end=True)
    assert script.result.status == "Completed"
    assert script.result.error_message is None
    assert script.result.extra == {"summary": "kept as an extra field"}


def test_json_scripts_load_and_null_means_not_set(tmp_path: Path) -> None:
    path = tmp_path / "agent.json"
    data = {
        "greeting": ["Hello."],
        "max_turns": None,
        "turns": [{"match": "x", "reply": ["y"], "tool": None}],
        "result": {"status": "Failed", "errorMessage": "scripted failure"},
    }
    path.write_text(json.dumps(data))

    script = AgentScript.load(path)

    assert script.max_turns is None
    assert script.turns == (Turn(match="x", reply=("y",)),)
    assert script.result.error_message == "scripted failure"


def test_the_default_script_and_the_examples_are_valid() -> None:
    default = AgentScript.default()
    assert default.greeting
    assert default.default_reply == ("You said: ", "{text}")
    examples = sorted(EXAMPLES.glob("*.toml")) + sorted(EXAMPLES.glob("*.json"))
    assert examples
    for path in examples:
        AgentScript.load(path)


def test_an_empty_file_is_the_defaults() -> None:
    assert AgentScript.parse("", format="toml") == AgentScript()


@pytest.mark.parametrize(
    ("data", "field", "problem"),
    [
        ({"greting": []}, "greting", "unknown field"),
        ({"greeting": 5}, "greeting", "expected a string or a list of strings, got a number"),
        ({"greeting": ["a", 2]}, "greeting[1]", "expected a string, got a number"),
        ({"echo_user": "yes"}, "echo_user", "expected true or false"),
        ({"chunk_delay": True}, "chunk_delay", "expected a number of seconds, got a boolean"),
        ({"chunk_delay": -1}, "chunk_delay", "zero or more"),
        ({"chunk_delay": float("inf")}, "chunk_delay", "zero or more"),
        ({"max_turns": 0}, "max_turns", "at least 1"),
        ({"max_turns": 1.5}, "max_turns", "expected an integer"),
        ({"turns": {}}, "turns", "expected a list of tables"),
        ({"turns": ["x"]}, "turns[0]", "expected a table, got a string"),
        ({"turns": [{"match": "("}]}, "turns[0].match", "not a valid regular expression"),
        ({"turns": [{"reply": ["{tool_result}"]}]}, "turns[0].reply[0]", "{tool_result}"),
        ({"turns": [{"tool": {"args": {}}}]}, "turns[0].tool.name", "a tool needs a name"),
        ({"turns": [{"tool": {"name": "t", "args": 3}}]}, "turns[0].tool.args", "a table"),
        (
            {"turns": [{"tool": {"name": "t", "args": {"a": ["{nope}"]}}}]},
            "turns[0].tool.args.a[0]",
            "unknown placeholder {nope}",
        ),
        ({"turns": [{"end": 1}]}, "turns[0].end", "expected true or false"),
        ({"turns": [{"extra": 1}]}, "turns[0].extra", "unknown field"),
        ({"greeting": ["{text}"]}, "greeting[0]", "known here: {data}"),
        ({"default_reply": ["{"]}, "default_reply[0]", "a lone '{'"),
        ({"farewell": ["{a b}"]}, "farewell[0]", "is not a placeholder"),
        ({"result": []}, "result", "expected a table"),
        ({"result": {"status": 1}}, "result.status", "expected a string"),
        ({"result": {"errorMessage": 1}}, "result.errorMessage", "expected a string"),
    ],
)
def test_invalid_scripts_name_the_field(data: Any, field: str, problem: str) -> None:
    with pytest.raises(ScriptError) as invalid:
        AgentScript.from_dict(data, source="agent.json")

    assert invalid.value.field == field
    assert problem in invalid.value.problem
    assert str(invalid.value).startswith(f"agent.json: {field}: ")


def test_a_script_must_be_a_table() -> None:
    with pytest.raises(ScriptError, match="expected a table, got a list"):
        AgentScript.parse("[]", format="json")


def test_unparseable_files_say_so(tmp_path: Path) -> None:
    bad_toml = tmp_path / "bad.toml"
    bad_toml.write_text("greeting = [")
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{")
    other = tmp_path / "agent.yaml"
    other.write_text("")

    with pytest.raises(ScriptError, match=r"bad.toml: not valid TOML"):
        AgentScript.load(bad_toml)
    with pytest.raises(ScriptError, match=r"bad.json: not valid JSON"):
        AgentScript.load(bad_json)
    with pytest.raises(ScriptError, match=r"agent.yaml: a script is a .toml or .json file"):
        AgentScript.load(other)
    with pytest.raises(ScriptError, match="unknown script format 'yaml'"):
        AgentScript.parse("", format="yaml")
    with pytest.raises(FileNotFoundError):
        AgentScript.load(tmp_path / "missing.toml")


def test_files_that_are_not_text_say_so(tmp_path: Path) -> None:
    latin = tmp_path / "latin.toml"
    latin.write_bytes('greeting = "caf\u00e9"\n'.encode("latin-1"))
    binary = tmp_path / "binary.json"
    binary.write_bytes(bytes(range(256)))
    (tmp_path / "dir.toml").mkdir()

    with pytest.raises(ScriptError, match=r"latin.toml: not UTF-8 text \(byte 15 is 0xe9\)"):
        AgentScript.load(latin)
    with pytest.raises(ScriptError, match=r"binary.json: not UTF-8 text \(byte 128 is 0x80\)"):
        AgentScript.load(binary)
    with pytest.raises(IsADirectoryError):
        AgentScript.load(tmp_path / "dir.toml")


def test_numbers_and_nesting_beyond_reason_say_so(tmp_path: Path) -> None:
    huge = tmp_path / "huge.json"
    huge.write_text('{"chunk_delay": 1' + "0" * 400 + "}")
    deep = tmp_path / "deep.json"
    deep.write_text('{"greeting": ' + "[" * 100_000 + "]" * 100_000 + "}")

    with pytest.raises(ScriptError, match="chunk_delay: is too large a number of seconds"):
        AgentScript.load(huge)
    with pytest.raises(ScriptError, match=r"deep\.json: nested too deeply to read"):
        AgentScript.load(deep)


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"chunk_delay": True}, "chunk_delay"),
        ({"chunk_delay": "1"}, "chunk_delay"),
        ({"chunk_delay": float("nan")}, "chunk_delay"),
        ({"max_turns": 1.5}, "max_turns"),
        ({"max_turns": True}, "max_turns"),
    ],
)
def test_scripts_built_in_python_check_their_numbers(options: dict[str, Any], field: str) -> None:
    with pytest.raises(ScriptError) as invalid:
        AgentScript(**options)

    assert invalid.value.field == field


def test_scripts_built_in_python_are_validated_too() -> None:
    with pytest.raises(ScriptError) as invalid:
        Turn(match="(?P<city>x)", reply=("{town}",))

    assert invalid.value.field == "reply[0]"
    assert "{city}" in invalid.value.problem
    with pytest.raises(ScriptError, match="a tool needs a name"):
        ToolSpec("")


def test_templates_parse_placeholders_and_escapes() -> None:
    assert parse("a {b} {{c}} {d.e.0}") == (
        "a ",
        Placeholder("b", ()),
        " ",
        "{",
        "c",
        "}",
        " ",
        Placeholder("d", ("e", "0")),
    )
    with pytest.raises(ValueError, match="lone '}'"):
        parse("a }")


@pytest.mark.parametrize(
    ("template", "rendered"),
    [
        ("{s}", "text"),
        ("{n} {b} {nothing}", "21 true "),
        ("{obj}", '{"k": "v", "list": [1, "two"]}'),
        ("{obj.k} {obj.list.1} {obj.list.5} {obj.k.deeper} {obj.missing}", "v two   "),
        ("{{{s}}}", "{text}"),
    ],
)
def test_templates_render_any_json(template: str, rendered: str) -> None:
    variables = {"s": "text", "n": 21, "b": True, "obj": {"k": "v", "list": [1, "two"]}}

    assert render(parse(template), variables) == rendered
