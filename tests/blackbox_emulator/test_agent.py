"""The scripted agent's decisions, without sockets."""

from __future__ import annotations

import itertools

from blackbox_emulator import AgentScript, AskTool, Finish, Say, ScriptedAgent, ToolSpec, Turn
from blackbox_protocol.messages import ConversationResultData

WEATHER = Turn(
    match=r"weather in (?P<city>\w+)",
    tool=ToolSpec("get_weather", {"city": "{city}", "asked": ["{text}"], "n": 1}),
    reply=("{city}: ", "{tool_result.temperature}"),
)


def agent(script: AgentScript, **data: str) -> ScriptedAgent:
    ids = (f"tool-{n}" for n in itertools.count(1))
    return ScriptedAgent(script, additional_data=data, new_id=lambda: next(ids))


def test_the_greeting_renders_additional_data() -> None:
    script = AgentScript(greeting=("Hi ", "{data.name}", "{data.missing}", "!"))

    assert agent(script, name="Ann").greet() == [Say("Hi "), Say("Ann"), Say("!")]


def test_a_message_is_echoed_then_answered_by_the_default_reply() -> None:
    bot = agent(AgentScript())

    assert bot.hear("hello") == [Say("hello", "user"), Say("You said: "), Say("hello")]
    assert bot.turns == 1


def test_the_echo_can_be_turned_off() -> None:
    assert agent(AgentScript(echo_user=False)).hear("x") == [Say("You said: "), Say("x")]


def test_the_first_matching_rule_wins() -> None:
    script = AgentScript(
        turns=(Turn(match="a", reply=("first",)), Turn(match="ab", reply=("second",))),
        echo_user=False,
    )

    assert agent(script).hear("ab") == [Say("first")]


def test_a_tool_rule_asks_then_replies_with_the_result() -> None:
    bot = agent(AgentScript(turns=(WEATHER,), echo_user=False))

    asked = bot.hear("weather in Oslo")
    assert asked == [
        AskTool("tool-1", "get_weather", {"city": "Oslo", "asked": ["weather in Oslo"], "n": 1})
    ]
    assert bot.tool_answered("tool-1", {"temperature": -3}) == [Say("Oslo: "), Say("-3")]
    assert bot.tool_answered("tool-1", {"temperature": -3}) == []
    assert bot.tool_answered("unknown", None) == []


def test_max_turns_waits_for_a_pending_tool_then_ends_with_the_farewell() -> None:
    result = ConversationResultData(status="Completed", extra={"note": "n"})
    script = AgentScript(
        turns=(WEATHER,), echo_user=False, max_turns=1, farewell=("Bye.",), result=result
    )
    bot = agent(script)

    assert bot.hear("weather in Rome") == [
        AskTool("tool-1", "get_weather", {"city": "Rome", "asked": ["weather in Rome"], "n": 1})
    ]
    assert not bot.finished
    actions = bot.tool_answered("tool-1", {"temperature": 30})
    assert actions == [Say("Rome: "), Say("30"), Say("Bye."), Finish(result)]
    assert bot.finished
    assert bot.hear("more?") == []


def test_an_end_rule_ends_without_the_farewell() -> None:
    script = AgentScript(
        turns=(Turn(match="bye", reply=("See you.",), end=True),),
        farewell=("never said",),
        echo_user=False,
    )
    bot = agent(script)

    assert bot.hear("bye") == [Say("See you."), Finish(bot.result)]
