"""Conversations in turns end to end: ``ask``, replies and the transcript, on every driver.

The same scenario runs on asyncio, trio and the sync API, against the
emulator and against the independent test server (``_plain_server``, which
shares no code with the SDK): the three drivers must give the same transcript.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from blackbox_emulator import EmulatorThread
from blackbox_emulator.thread import EmulatorFactory
from blackbox_protocol import (
    Call,
    ConnectionState,
    DisconnectedError,
    NoReply,
    Reply,
    ReplyEnded,
    ReplyTimeout,
    TextReceived,
    ToolContext,
    ToolRequested,
    Turn,
    connect,
    sync,
)
from blackbox_protocol.messages import (
    IncomingChatMessage,
    Terminate,
    Text,
    TextContent,
    UnknownMessage,
)

from tests.e2e._hostile import Peer, hostile_server
from tests.e2e._plain_server import GREETING as PLAIN_GREETING
from tests.e2e._plain_server import PlainServer

#: Each test's bound: a hang fails instead of blocking the suite.
LIMIT = 20
#: Short enough for quick tests, long enough for loopback chunks to count as one reply.
PAUSE = 0.3
LINES = ("hello there", "what is the weather")

Said = list[tuple[str, str]]


def said(transcript: tuple[Turn, ...]) -> Said:
    return [(turn.source, turn.text) for turn in transcript]


def check_reply(reply: Reply) -> None:
    assert reply.text == "".join(reply.chunks)
    assert reply.latency is not None
    assert 0 <= reply.latency.first_chunk <= reply.latency.end


async def scenario_async(server: str, token: str, **options: Any) -> tuple[Said, list[str]]:
    with anyio.fail_after(LIMIT):
        return await _scenario_async(server, token, **options)


async def _scenario_async(server: str, token: str, **options: Any) -> tuple[Said, list[str]]:
    async with connect(token, server=server, reply_pause=PAUSE, **options) as call:
        greeting = await call.wait_for_reply()
        replies = [await call.ask(line) for line in LINES]
        for reply in replies:
            check_reply(reply)
        await call.terminate()
    return said(call.transcript), [greeting.text, *(reply.text for reply in replies)]


def scenario_sync(server: str, token: str, **options: Any) -> tuple[Said, list[str]]:
    with sync.connect(token, server=server, reply_pause=PAUSE, **options) as call:
        greeting = call.wait_for_reply()
        replies = [call.ask(line) for line in LINES]
        for reply in replies:
            check_reply(reply)
        call.terminate()
    assert call.state is ConnectionState.CLOSED
    return said(call.transcript), [greeting.text, *(reply.text for reply in replies)]


def every_driver(server: str, token: str, **options: Any) -> dict[str, tuple[Said, list[str]]]:
    """The scenario's transcript and replies, on asyncio, trio and the sync API."""
    outcomes = {}
    for backend in ("asyncio", "trio"):
        outcomes[backend] = anyio.run(
            lambda: scenario_async(server, token, **options), backend=backend
        )
    outcomes["sync"] = scenario_sync(server, token, **options)
    return outcomes


def weather(city: str, context: ToolContext) -> dict[str, Any]:
    assert context.name == "get_weather"
    assert context.id
    assert context.call.conversation_id is not None
    return {"temperature": 21 if city == "Paris" else 0}


def test_the_three_drivers_give_the_same_transcript_against_the_emulator(
    blackbox_emulator: EmulatorThread,
) -> None:
    outcomes = every_driver(blackbox_emulator.server, blackbox_emulator.token)

    transcript, replies = outcomes["sync"]
    assert outcomes["asyncio"] == outcomes["trio"] == outcomes["sync"]
    greeting = "".join(blackbox_emulator.emulator.script.greeting)
    assert replies == [greeting, *(f"You said: {line}" for line in LINES)]
    assert transcript == [
        ("assistant", greeting),
        ("user", LINES[0]),
        ("assistant", f"You said: {LINES[0]}"),
        ("user", LINES[1]),
        ("assistant", f"You said: {LINES[1]}"),
    ]


def test_the_three_drivers_give_the_same_transcript_against_an_independent_server(
    plain_server: PlainServer,
) -> None:
    outcomes = every_driver(plain_server.url, plain_server.token, tools={"get_weather": weather})

    transcript, replies = outcomes["sync"]
    assert outcomes["asyncio"] == outcomes["trio"] == outcomes["sync"]
    # The tool's answer, with the ToolContext it asked for, is in the reply.
    assert replies == ["".join(PLAIN_GREETING), "You said: hello there.", "It is 21 degrees."]
    assert transcript == [
        ("assistant", "".join(PLAIN_GREETING)),
        ("user", LINES[0]),
        ("assistant", "You said: hello there."),
        ("user", LINES[1]),
        ("assistant", "It is 21 degrees."),
    ]


# The async API's other verbs, on asyncio and trio.


@pytest.mark.anyio
async def test_an_awaited_connect_runs_until_aclose(plain_server: PlainServer) -> None:
    with anyio.fail_after(LIMIT):
        call = await connect(plain_server.token, server=plain_server.url, reply_pause=PAUSE)
        # Nobody iterates: the call's own task reads, and the reply tracker ends the greeting.
        greeting = await call.wait_for_reply()
        reply = await call.ask("hi")
        await call.aclose()
        await call.aclose()  # idempotent
    assert greeting.latency is None  # nothing was sent before it
    assert reply.text == "You said: hi."
    assert call.state is ConnectionState.CLOSED
    assert call.result is not None
    assert call.result.status == "Completed"


@pytest.mark.anyio
async def test_an_awaited_call_is_a_context_manager_too(plain_server: PlainServer) -> None:
    with anyio.fail_after(LIMIT):
        async with await connect(plain_server.token, server=plain_server.url) as call:
            await call.wait_for_reply()
    assert call.state is ConnectionState.CLOSED


@pytest.mark.anyio
async def test_a_reply_slower_than_the_wait_is_a_timeout_and_still_comes(
    plain_server: PlainServer,
) -> None:
    with anyio.fail_after(LIMIT):
        async with connect(plain_server.token, server=plain_server.url, reply_pause=PAUSE) as call:
            await call.wait_for_reply()
            # The server waits 100 ms before it replies.
            with pytest.raises(ReplyTimeout) as raised:
                await call.ask("slow", timeout=0.01)
            late = await call.wait_for_reply()
    assert raised.value.seconds == 0.01
    assert isinstance(raised.value, TimeoutError)
    assert late.text == "You said: slow."


@pytest.mark.anyio
async def test_waiting_for_a_reply_when_the_conversation_ends_is_no_reply(
    plain_server: PlainServer,
) -> None:
    with anyio.fail_after(LIMIT):
        async with connect(plain_server.token, server=plain_server.url, reply_pause=PAUSE) as call:
            await call.wait_for_reply()
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(call.terminate)
                with pytest.raises(NoReply, match="ended before the agent replied"):
                    await call.wait_for_reply()
    assert call.result is not None


@pytest.mark.anyio
async def test_handlers_see_every_event_of_their_kind_beside_the_iteration(
    plain_server: PlainServer,
) -> None:
    texts: list[str] = []
    replies: list[str] = []
    seen_async: list[str] = []

    async def on_reply_async(event: ReplyEnded) -> None:
        seen_async.append(event.text)

    def broken(event: TextReceived) -> None:
        raise RuntimeError("a handler's bug does not end the call")

    with anyio.fail_after(LIMIT):
        async with connect(plain_server.token, server=plain_server.url, reply_pause=PAUSE) as call:
            remove = call.on(TextReceived, lambda event: texts.append(event.text))
            call.on(TextReceived, broken)
            call.on(ReplyEnded, lambda event: replies.append(event.text))
            call.on(ReplyEnded, on_reply_async)
            await call.wait_for_reply()
            remove()
            remove()  # twice is harmless
            await call.ask("hi")
            iterated = [event async for event in _until_reply_end(call)]

    assert texts == list(PLAIN_GREETING)  # removed before the reply
    assert replies == ["".join(PLAIN_GREETING), "You said: hi."]
    assert seen_async == replies
    # The iteration still had every event.
    assert sum(isinstance(event, ReplyEnded) for event in iterated) == 2


async def _until_reply_end(call: Call) -> AsyncIterator[Any]:
    ended = 0
    async for event in call:
        yield event
        ended += isinstance(event, ReplyEnded)
        if ended == 2:
            return


@pytest.mark.anyio
async def test_the_app_answers_a_tool_nobody_registered(plain_server: PlainServer) -> None:
    with anyio.fail_after(LIMIT):
        async with connect(
            plain_server.token, server=plain_server.url, reply_pause=PAUSE, unhandled_tools="app"
        ) as call:
            await call.wait_for_reply()
            await call.send_text("weather please")
            request = None
            async for event in call:
                if isinstance(event, ToolRequested):
                    request = event
                    break
            assert request is not None
            await call.reply_to_tool(request.id, {"temperature": 7})
            reply = await call.wait_for_reply()
    assert reply.text == "It is 7 degrees."


@pytest.mark.anyio
async def test_send_raw_goes_past_the_core(plain_server: PlainServer) -> None:
    with anyio.fail_after(LIMIT):
        async with connect(plain_server.token, server=plain_server.url) as call:
            await call.wait_for_reply()
            state = call.connection.state
            await call.send_raw(UnknownMessage(unknown_type="futureHello"))
            assert call.connection.state is state
        (transcript,) = await anyio.to_thread.run_sync(plain_server.finished)
    sent = [line["frame"]["type"] for line in transcript if line.get("dir") == "out"]
    assert "futureHello" in sent


def test_the_sync_api_iterates_events_with_a_timeout(plain_server: PlainServer) -> None:
    with sync.connect(plain_server.token, server=plain_server.url, reply_pause=PAUSE) as call:
        events = []
        for event in call.events(timeout=5):
            events.append(event)
            if isinstance(event, ReplyEnded):
                break
        with pytest.raises(TimeoutError):
            call.next_event(timeout=0.5)  # the agent waits for us now
        assert call.ask("hi").text == "You said: hi."
    assert isinstance(events[-1], ReplyEnded)
    assert call.result is not None
    with pytest.raises(Exception, match="the call is closed"):
        call.ask("again")


@pytest.mark.anyio
async def test_a_reply_cut_short_by_a_drop_is_the_failure_not_a_reply(
    blackbox_emulator_factory: EmulatorFactory,
) -> None:
    emulator = blackbox_emulator_factory(fault="drop")  # aborts after the agent's first chunk
    with anyio.fail_after(LIMIT), pytest.raises(DisconnectedError):
        async with connect(emulator.token, server=emulator.server) as call:
            await call.ask("hi")
    # What was said is kept all the same.
    (turn,) = call.transcript
    assert (turn.source, turn.text) == ("assistant", "Hello! ")


# Which reply answers: a server scripted frame by frame (tests/e2e/_hostile.py).


async def user_says(peer: Peer, text: str) -> None:
    await peer.send_message(Text(content=TextContent(source="user", text=text)))


async def greeting_in_flight(peer: Peer) -> None:
    """The greeting starts after the user's text was sent, and its echo cuts it."""
    await peer.accept()
    message = await peer.expect(IncomingChatMessage)
    await peer.say("Hello! ")
    await user_says(peer, message.content)
    await peer.say("The answer.")
    await peer.expect(Terminate)
    await peer.end()
    await peer.until_closed()


async def caller_barges_in(peer: Peer) -> None:
    """The reply to the text is cut short by the caller's next words, not by the echo."""
    await peer.accept()
    message = await peer.expect(IncomingChatMessage)
    await user_says(peer, message.content)
    await peer.say("Let me see, ")
    await user_says(peer, "wait")
    await peer.expect(Terminate)
    await peer.end()
    await peer.until_closed()


@pytest.mark.anyio
async def test_a_greeting_its_echo_cuts_short_is_not_the_answer() -> None:
    with hostile_server(greeting_in_flight) as server, anyio.fail_after(LIMIT):
        async with connect("token", server=server.url, reply_pause=PAUSE) as call:
            reply = await call.ask("what is it?")
    assert reply.text == "The answer."
    assert said(call.transcript)[:2] == [("assistant", "Hello! "), ("user", "what is it?")]


@pytest.mark.anyio
async def test_a_reply_the_caller_cuts_short_still_answers() -> None:
    with hostile_server(caller_barges_in) as server, anyio.fail_after(LIMIT):
        async with connect("token", server=server.url, reply_pause=PAUSE) as call:
            reply = await call.ask("what is it?")
    assert reply.text == "Let me see, "
    assert reply.latency is not None
