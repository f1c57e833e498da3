"""Property and example tests of the codec: ``encode``, ``decode``, ``format_timestamp``.

The properties: every message round-trips through the wire; ``decode`` turns any
text into a ``Message`` or an ``InvalidMessage``, never another exception, also
for valid frames mutated at random. The examples pin the wire shapes PROTOCOL.md
documents or that the live service was seen to use.
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import attrs
import pytest
from blackbox_protocol import (
    CallType,
    InvalidMessage,
    LocalProtocolError,
    Message,
    UnknownMessage,
    decode,
    encode,
    format_timestamp,
    to_wire,
)
from blackbox_protocol._codec import MAX_NESTING, read_shallow
from blackbox_protocol.messages import (
    MESSAGE_CLASSES,
    ConversationResult,
    ConversationResultData,
    Error,
    ErrorData,
    Event,
    EventData,
    IncomingChatMessage,
    Initialize,
    InitializeRequest,
    SdpAnswer,
    SdpAnswerData,
    SdpInvite,
    SdpInviteData,
    Terminate,
    Text,
    TextContent,
    ToolCall,
    ToolCallResult,
    ToolRequestContent,
    ToolResponseContent,
    WebsocketToolRequest,
    WebsocketToolResponse,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests._hypothesis import examples

TRANSCRIPTS: Final = Path(__file__).parent / "transcripts"
ENVELOPE: Final = frozenset({"type", "timestamp", "channelId"})

# Strategies.

#: Integers well inside the 4300-digit limit Python puts on int <-> str.
json_leaves: Final[st.SearchStrategy[Any]] = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values: Final[st.SearchStrategy[Any]] = st.recursive(
    json_leaves,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
json_objects: Final[st.SearchStrategy[dict[str, Any]]] = st.dictionaries(
    st.text(max_size=8), json_values, max_size=4
)
texts: Final = st.text(max_size=30)
optional_texts: Final = st.none() | texts
#: Wire timestamps as received can be any string; ``None`` lets encode stamp it.
timestamps: Final = st.none() | st.just("2025-01-20T10:00:00.000Z") | texts
#: POSIX seconds from 1970 to 2100.
nows: Final = st.floats(min_value=0, max_value=4_102_444_800, allow_nan=False)


def wire_name(name: str) -> str:
    """The camelCase wire name of a snake_case attribute (written here independently)."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def known_keys(cls: type[Any]) -> frozenset[str]:
    """The wire keys a class decodes into its own fields (never into ``extra``)."""
    if cls is UnknownMessage:
        return ENVELOPE
    keys = frozenset(wire_name(a.name) for a in attrs.fields(cls) if a.name != "extra")
    return keys | ENVELOPE if issubclass(cls, Message) else keys


def extras(cls: type[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Unknown fields for ``cls``: keys that are none of its wire keys."""
    known = known_keys(cls)
    keys = st.text(max_size=10).filter(lambda key: key not in known)
    return st.dictionaries(keys, json_values, max_size=3)


def message(cls: type[Message], **payload: st.SearchStrategy[Any]) -> st.SearchStrategy[Message]:
    """A message of ``cls`` with a generated envelope, extras and payload."""
    return st.builds(
        cls,
        timestamp=timestamps,
        channel_id=optional_texts,
        extra=extras(cls),
        **payload,
    )


initialize_requests: Final = st.builds(
    InitializeRequest,
    call_type=st.sampled_from([str(c) for c in CallType]) | texts,
    additional_data=st.none() | json_objects,
    endpoint=optional_texts,
    extra=extras(InitializeRequest),
)
event_data: Final = st.builds(
    EventData, record_id=optional_texts, job_id=optional_texts, extra=extras(EventData)
)
sdp_invite_data: Final = st.one_of(
    st.builds(SdpInviteData, invite=texts, extra=extras(SdpInviteData)),
    st.builds(SdpInviteData, sdp_offer=texts, extra=extras(SdpInviteData)),
    st.builds(SdpInviteData, invite=texts, sdp_offer=texts, extra=extras(SdpInviteData)),
)
unknown_types: Final = texts.filter(lambda t: t not in MESSAGE_CLASSES)

#: A strategy for every message class, and for ``UnknownMessage``.
STRATEGIES: Final[Mapping[type[Message], st.SearchStrategy[Message]]] = {
    Initialize: message(Initialize, request=initialize_requests),
    IncomingChatMessage: message(IncomingChatMessage, content=texts),
    SdpAnswer: message(
        SdpAnswer,
        data=st.builds(SdpAnswerData, sdp_answer=texts, extra=extras(SdpAnswerData)),
    ),
    WebsocketToolResponse: message(
        WebsocketToolResponse,
        content=st.builds(
            ToolResponseContent, id=texts, result=json_values, extra=extras(ToolResponseContent)
        ),
    ),
    Terminate: message(Terminate),
    Event: message(Event, name=st.just("connection") | texts, data=st.none() | event_data),
    Text: message(
        Text,
        content=st.builds(
            TextContent,
            source=st.sampled_from(["assistant", "user"]) | texts,
            text=texts,
            type=st.none() | st.just("potential") | texts,
            extra=extras(TextContent),
        ),
    ),
    SdpInvite: message(SdpInvite, data=sdp_invite_data),
    WebsocketToolRequest: message(
        WebsocketToolRequest,
        content=st.builds(
            ToolRequestContent,
            id=texts,
            tool_name=texts,
            args=json_objects,
            extra=extras(ToolRequestContent),
        ),
    ),
    ToolCall: message(ToolCall),
    ToolCallResult: message(ToolCallResult),
    ConversationResult: message(
        ConversationResult,
        result=st.builds(
            ConversationResultData,
            status=st.none() | st.just("Completed") | texts,
            error_message=optional_texts,
            extra=extras(ConversationResultData),
        ),
    ),
    Error: message(Error, data=st.builds(ErrorData, message=texts, extra=extras(ErrorData))),
    UnknownMessage: message(UnknownMessage, unknown_type=unknown_types),
}
any_message: Final = st.one_of(*STRATEGIES.values())


def test_strategies_cover_every_message_class() -> None:
    assert set(STRATEGIES) == {*MESSAGE_CLASSES.values(), UnknownMessage}


# Round trip.


@pytest.mark.parametrize("cls", list(STRATEGIES), ids=lambda cls: cls.__name__)
@settings(max_examples=examples(25), deadline=None)
@given(data=st.data(), now=nows)
def test_round_trip(cls: type[Message], data: st.DataObject, now: float) -> None:
    sent = data.draw(STRATEGIES[cls])
    assert type(sent) is cls
    text = encode(sent, now=now)
    received = decode(text)
    stamp = format_timestamp(now) if sent.timestamp is None else sent.timestamp
    expected = attrs.evolve(sent, timestamp=stamp)
    assert received == expected
    frame = json.loads(text)
    assert frame["type"] == sent.type
    assert frame["timestamp"] == expected.timestamp
    assert frame["channelId"] == sent.channel_id
    assert to_wire(expected) == frame


@settings(max_examples=examples(30), deadline=None)
@given(sent=any_message)
def test_encode_with_a_timestamp_ignores_now(sent: Message) -> None:
    stamped = attrs.evolve(sent, timestamp="2025-01-20T10:00:00.000Z")
    assert encode(stamped, now=0) == encode(stamped, now=1e9)
    assert json.loads(encode(stamped, now=0))["timestamp"] == "2025-01-20T10:00:00.000Z"


@settings(max_examples=examples(100), deadline=None)
@given(now=nows)
def test_format_timestamp_is_the_wire_form_truncated_to_milliseconds(now: float) -> None:
    stamp = format_timestamp(now)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", stamp)
    moment = datetime.fromisoformat(stamp).timestamp()
    # Truncated to the millisecond (datetime rounds to the microsecond first).
    assert now - 0.001 < moment <= now + 1e-6


# Decode never fails with anything but InvalidMessage.


def decode_or_invalid(text: str) -> Message | None:
    """Decode, allowing only ``InvalidMessage`` (then ``None``); check its attributes."""
    error: InvalidMessage | None = None
    try:
        decoded = decode(text)
    except InvalidMessage as exc:
        error = exc
    if error is not None:
        assert error.reason
        assert str(error) == error.reason
        assert error.message_type is None or isinstance(error.message_type, str)
        return None
    assert isinstance(decoded, Message)
    if type(decoded) is not UnknownMessage:
        assert MESSAGE_CLASSES[decoded.type] is type(decoded)
    return decoded


#: Keys of the protocol, so that random frames often look almost right.
WIRE_KEYS: Final = sorted(
    {key for cls in (*MESSAGE_CLASSES.values(), UnknownMessage) for key in known_keys(cls)}
    | {
        wire_name(a.name)
        for cls in (
            InitializeRequest,
            SdpAnswerData,
            ToolResponseContent,
            EventData,
            TextContent,
            SdpInviteData,
            ToolRequestContent,
            ConversationResultData,
            ErrorData,
        )
        for a in attrs.fields(cls)
    }
)
type_names: Final = st.sampled_from(sorted(MESSAGE_CLASSES)) | texts
wire_like_values: Final[st.SearchStrategy[Any]] = st.recursive(
    json_leaves | type_names,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(WIRE_KEYS) | st.text(max_size=5), children, max_size=5)
    ),
    max_leaves=15,
)
frame_like: Final = st.builds(
    lambda tag, rest: {**rest, "type": tag},
    type_names | json_values,
    st.dictionaries(st.sampled_from(WIRE_KEYS), wire_like_values, max_size=5),
)


@settings(max_examples=examples(100), deadline=None)
@given(value=json_values)
def test_any_json_value_decodes_or_is_invalid(value: Any) -> None:
    decode_or_invalid(json.dumps(value))


@settings(max_examples=examples(150), deadline=None)
@given(value=frame_like)
def test_any_frame_like_object_decodes_or_is_invalid(value: dict[str, Any]) -> None:
    decoded = decode_or_invalid(json.dumps(value))
    if decoded is not None:
        assert decoded.type == value["type"]


@settings(max_examples=examples(150), deadline=None)
@given(text=st.text())
def test_any_text_decodes_or_is_invalid(text: str) -> None:
    decode_or_invalid(text)


@settings(max_examples=examples(150), deadline=None)
@given(raw=st.binary())
def test_any_bytes_as_latin_1_decode_or_are_invalid(raw: bytes) -> None:
    decode_or_invalid(raw.decode("latin-1"))


# Mutated valid frames.


def transcript_frames() -> list[dict[str, Any]]:
    frames: list[dict[str, Any]] = []
    for path in sorted(TRANSCRIPTS.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            entry = json.loads(line)
            if "frame" in entry:
                frames.append(entry["frame"])
    return frames


TRANSCRIPT_FRAMES: Final = transcript_frames()

JsonPath = tuple[str | int, ...]


def paths(value: Any, prefix: JsonPath = ()) -> list[JsonPath]:
    """Every path below ``value`` (not the root itself), parents first."""
    found: list[JsonPath] = []
    items: list[tuple[str | int, Any]] = []
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list):
        items = list(enumerate(value))
    for key, item in items:
        found.append((*prefix, key))
        found.extend(paths(item, (*prefix, key)))
    return found


def parent_of(root: Any, path: JsonPath) -> Any:
    for key in path[:-1]:
        root = root[key]
    return root


#: Spliced in place of a value, then replaced by deeply nested text after dumps.
DEEP: Final = "\x00deep-nesting-marker\x00"


@st.composite
def mutated_frames(draw: st.DrawFn) -> str:
    if draw(st.booleans()):
        frame: dict[str, Any] = json.loads(encode(draw(any_message), now=0))
    else:
        frame = copy.deepcopy(draw(st.sampled_from(TRANSCRIPT_FRAMES)))
    deep: tuple[int, str] | None = None
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        operation = draw(st.sampled_from(["delete", "replace", "retype", "nest", "deep"]))
        every = paths(frame)
        if operation == "retype":
            frame["type"] = draw(type_names | json_values)
            continue
        if operation == "delete":
            keyed = [p for p in every if isinstance(parent_of(frame, p), dict)]
            if keyed:
                path = draw(st.sampled_from(keyed))
                del parent_of(frame, path)[path[-1]]
            continue
        if not every:
            continue
        path = draw(st.sampled_from(every))
        parent = parent_of(frame, path)
        if operation == "replace":
            parent[path[-1]] = draw(wire_like_values)
        elif operation == "nest":
            value = parent[path[-1]]
            for _ in range(draw(st.integers(min_value=1, max_value=30))):
                value = [value] if draw(st.booleans()) else {"k": value}
            parent[path[-1]] = value
        elif deep is None:
            depth = draw(st.integers(min_value=1, max_value=5000))
            deep = (depth, json.dumps(parent[path[-1]]))
            parent[path[-1]] = DEEP
    text = json.dumps(frame, ensure_ascii=draw(st.booleans()))
    if deep is not None:
        depth, inner = deep
        text = text.replace(json.dumps(DEEP), "[" * depth + inner + "]" * depth, 1)
    return text


@settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=mutated_frames())
def test_mutated_valid_frames_decode_or_are_invalid(text: str) -> None:
    decode_or_invalid(text)


@settings(max_examples=examples(100), deadline=None)
@given(frame=st.sampled_from(TRANSCRIPT_FRAMES), key=st.sampled_from(sorted(ENVELOPE - {"type"})))
def test_transcript_frames_without_optional_envelope_fields_decode(
    frame: dict[str, Any], key: str
) -> None:
    # ``timestamp`` and ``channelId`` are optional on received frames.
    stripped = {k: v for k, v in frame.items() if k != key}
    decoded = decode(json.dumps(stripped))
    assert decoded.type == frame["type"]
    assert (decoded.timestamp is None) == ("timestamp" not in stripped)


def test_transcripts_give_frames_to_mutate() -> None:
    assert len(TRANSCRIPT_FRAMES) >= 20
    for frame in TRANSCRIPT_FRAMES:
        assert type(decode(json.dumps(frame))) is MESSAGE_CLASSES[frame["type"]]


# Unknown messages.


@settings(max_examples=examples(50), deadline=None)
@given(
    tag=unknown_types,
    rest=st.dictionaries(st.sampled_from(WIRE_KEYS) | texts, json_values, max_size=5),
)
def test_unknown_message_keeps_the_raw_object(tag: str, rest: dict[str, Any]) -> None:
    # Whatever the envelope holds, even of an odd type, the raw object keeps it;
    # only a missing ``channelId`` is filled in (with the ``null`` encode writes).
    frame = {**rest, "type": tag}
    decoded = decode(json.dumps(frame))
    assert isinstance(decoded, UnknownMessage)
    assert decoded.type == tag
    assert decoded.raw == {"channelId": None, **frame}


def test_unknown_type_example_keeps_everything_and_is_written_back() -> None:
    frame = {
        "type": "agentThinking",
        "timestamp": "2026-06-10T09:00:00.000Z",
        "channelId": None,
        "payload": {"steps": [1, 2.5, "three", None, True], "nested": {"a": {}}},
        "content": "not checked for an unknown type",
    }
    decoded = decode(json.dumps(frame))
    assert isinstance(decoded, UnknownMessage)
    assert decoded.type == "agentThinking"
    assert decoded.unknown_type == "agentThinking"
    assert decoded.timestamp == "2026-06-10T09:00:00.000Z"
    assert decoded.raw == frame
    assert json.loads(encode(decoded)) == frame


def test_unknown_type_with_odd_envelope_types_keeps_them() -> None:
    frame = {"type": "future", "timestamp": 17, "channelId": ["x"]}
    decoded = decode(json.dumps(frame))
    assert isinstance(decoded, UnknownMessage)
    assert decoded.timestamp is None
    assert decoded.raw == frame


# Wire shapes.


SDP: Final = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\nm=audio 9 RTP/SAVP 0\r\n"


@pytest.mark.parametrize("key", ["invite", "sdpOffer"])
def test_both_offer_keys_decode_to_sdp_invite(key: str) -> None:
    decoded = decode(json.dumps({"type": "sdpInvite", "data": {key: SDP}}))
    assert isinstance(decoded, SdpInvite)
    assert decoded.data.sdp == SDP
    assert (decoded.data.invite, decoded.data.sdp_offer) == (
        (SDP, None) if key == "invite" else (None, SDP)
    )


def test_offer_under_invite_wins_over_sdp_offer() -> None:
    decoded = decode(json.dumps({"type": "sdpInvite", "data": {"invite": SDP, "sdpOffer": "x"}}))
    assert isinstance(decoded, SdpInvite)
    assert decoded.data.sdp == SDP


def test_offer_without_sdp_is_invalid() -> None:
    with pytest.raises(InvalidMessage, match=r"\$\.data") as caught:
        decode(json.dumps({"type": "sdpInvite", "data": {"sdp": SDP}}))
    assert caught.value.message_type == "sdpInvite"


@pytest.mark.parametrize(
    ("data", "record_id", "job_id"),
    [
        ({"recordId": "call-abc123"}, "call-abc123", None),
        ({"jobId": "5f0c2b1e"}, None, "5f0c2b1e"),
        ({"recordId": "r", "jobId": "j"}, "r", "j"),
    ],
)
def test_record_id_and_job_id_both_land_in_event_data(
    data: dict[str, str], record_id: str | None, job_id: str | None
) -> None:
    decoded = decode(json.dumps({"type": "event", "name": "connection", "data": data}))
    assert isinstance(decoded, Event)
    assert decoded.name == "connection"
    assert decoded.data == EventData(record_id=record_id, job_id=job_id)


def test_unknown_fields_survive_at_top_level_and_nested() -> None:
    frame = {
        "type": "text",
        "timestamp": "2026-06-10T09:00:01.100Z",
        "channelId": "ch-1",
        "sequence": 7,
        "content": {
            "source": "assistant",
            "text": "Hi! ",
            "emotion": {"name": "happy", "score": 0.5},
            "final": False,
        },
    }
    decoded = decode(json.dumps(frame))
    assert isinstance(decoded, Text)
    assert decoded.channel_id == "ch-1"
    assert decoded.extra == {"sequence": 7}
    assert decoded.content == TextContent(
        source="assistant",
        text="Hi! ",
        extra={"emotion": {"name": "happy", "score": 0.5}, "final": False},
    )
    assert json.loads(encode(decoded)) == frame


def test_unknown_fields_survive_in_every_payload_object() -> None:
    frame = {
        "type": "initialize",
        "timestamp": "t",
        "channelId": None,
        "request": {"callType": "chat", "additionalData": {}, "locale": "en-US"},
    }
    decoded = decode(json.dumps(frame))
    assert isinstance(decoded, Initialize)
    assert decoded.request.extra == {"locale": "en-US"}
    assert json.loads(encode(decoded)) == frame


def test_tool_logs_keep_their_undocumented_shape() -> None:
    frame = {
        "type": "toolCallResult",
        "timestamp": "2026-06-10T09:00:04.100Z",
        "channelId": None,
        "content": {"id": "3f1c9a"},
    }
    decoded = decode(json.dumps(frame))
    assert isinstance(decoded, ToolCallResult)
    assert decoded.extra == {"content": {"id": "3f1c9a"}}
    assert json.loads(encode(decoded)) == frame


def test_encode_always_writes_timestamp_and_null_channel_id() -> None:
    assert json.loads(encode(Terminate(), now=0)) == {
        "type": "terminate",
        "timestamp": "1970-01-01T00:00:00.000Z",
        "channelId": None,
    }
    frame = json.loads(
        encode(WebsocketToolResponse(content=ToolResponseContent(id="3f1c9a")), now=1.5)
    )
    assert frame == {
        "type": "websocketToolResponse",
        "timestamp": "1970-01-01T00:00:01.500Z",
        "channelId": None,
        # A tool's null result is still a result: written, not omitted.
        "content": {"id": "3f1c9a", "result": None},
    }


def test_encode_omits_unset_optional_payload_fields() -> None:
    initialize = Initialize(request=InitializeRequest(call_type="chat"), timestamp="t")
    assert json.loads(encode(initialize))["request"] == {"callType": "chat"}
    text = Text(content=TextContent(source="assistant", text="x"), timestamp="t")
    assert json.loads(encode(text))["content"] == {"source": "assistant", "text": "x"}
    event = Event(name="opened", timestamp="t")
    assert "data" not in json.loads(encode(event))
    # The conversation result keeps its documented shape, nulls included.
    result = ConversationResult(result=ConversationResultData(), timestamp="t")
    assert json.loads(encode(result))["result"] == {"status": None, "errorMessage": None}


def test_incoming_chat_message_content_is_a_plain_string() -> None:
    frame = json.loads(encode(IncomingChatMessage(content="Hello"), now=0))
    assert frame["content"] == "Hello"
    with pytest.raises(InvalidMessage, match=r"\$\.content\b"):
        decode(json.dumps({"type": "incomingChatMessage", "content": {"text": "Hello"}}))


@pytest.mark.parametrize(
    ("frame", "path"),
    [
        (
            {"type": "websocketToolRequest", "content": {"id": "1", "toolName": 5}},
            "$.content.toolName",
        ),
        ({"type": "websocketToolRequest", "content": {"id": "1"}}, "$.content.toolName"),
        (
            {"type": "websocketToolRequest", "content": {"id": "1", "toolName": "t", "args": []}},
            "$.content.args",
        ),
        (
            {"type": "initialize", "request": {"callType": "chat", "additionalData": [1]}},
            "$.request.additionalData",
        ),
        ({"type": "initialize", "request": {"call_type": "chat"}}, "$.request.callType"),
        ({"type": "sdpAnswer", "data": {"sdp": "v=0"}}, "$.data.sdpAnswer"),
        ({"type": "text", "content": {"source": "user", "text": None}}, "$.content.text"),
        (
            {"type": "conversationResult", "result": {"status": "Completed", "errorMessage": 1}},
            "$.result.errorMessage",
        ),
        ({"type": "event", "name": "connection", "data": {"recordId": 7}}, "$.data.recordId"),
        ({"type": "event", "data": {}}, "$.name"),
        ({"type": "error", "data": "Invalid token"}, "$.data"),
        ({"type": "text", "timestamp": 5, "content": {"source": "u", "text": "t"}}, "$.timestamp"),
        ({"type": "terminate", "channelId": 0}, "$.channelId"),
    ],
)
def test_invalid_message_names_the_wire_path(frame: dict[str, Any], path: str) -> None:
    with pytest.raises(InvalidMessage) as caught:
        decode(json.dumps(frame))
    assert re.search(re.escape(path) + r"(?![\w.\[])", caught.value.reason), caught.value.reason
    assert caught.value.message_type == frame["type"]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "not JSON"),
        ("{", "not JSON"),
        ("[]", "must be a JSON object"),
        ('"initialize"', "must be a JSON object"),
        ("{}", r"\$\.type"),
        ('{"type": 5}', r"\$\.type"),
        ('{"type": null}', r"\$\.type"),
    ],
)
def test_not_a_frame_is_invalid(text: str, reason: str) -> None:
    with pytest.raises(InvalidMessage, match=reason) as caught:
        decode(text)
    assert caught.value.message_type is None


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_are_rejected(constant: str) -> None:
    text = (
        '{"type": "websocketToolRequest", "content": '
        f'{{"id": "1", "toolName": "t", "args": {{"x": {constant}}}}}}}'
    )
    with pytest.raises(InvalidMessage, match="not JSON"):
        decode(text)


def test_numbers_that_overflow_to_infinity_are_rejected() -> None:
    # ``1e400`` is valid JSON syntax, but Python reads it as ``inf``: accepting it
    # lets in a value that ``encode`` then refuses (``allow_nan=False``).
    text = (
        '{"type": "websocketToolRequest", '
        '"content": {"id": "1", "toolName": "t", "args": {"x": 1e400}}}'
    )
    with pytest.raises(InvalidMessage):
        decode(text)


def test_encode_refuses_non_finite_numbers() -> None:
    for value in (math.nan, math.inf, -math.inf):
        response = WebsocketToolResponse(content=ToolResponseContent(id="1", result=value))
        with pytest.raises(LocalProtocolError, match="websocketToolResponse"):
            encode(response, now=0)


@pytest.mark.parametrize("opening", ["[", '{"a":'])
def test_deeply_nested_json_is_invalid(opening: str) -> None:
    closing = "]" if opening == "[" else "}"
    text = '{"type": "text", "x": ' + opening * 100_000 + "1" + closing * 100_000 + "}"
    with pytest.raises(InvalidMessage, match="nest deeper than 128 levels"):
        decode(text)
    with pytest.raises(InvalidMessage, match="nest deeper than 128 levels"):
        decode(opening * 100_000)


def tool_request_frame(depth: int) -> str:
    """A tool request whose args hold ``{"v": [[...]]}``, the list ``depth`` + 1 levels deep.

    Written by hand: ``json.dumps`` itself cannot write the deepest ones.
    """
    args = '{"v": ' + "[" * (depth + 1) + "]" * (depth + 1) + "}"
    return (
        '{"type": "websocketToolRequest", "timestamp": "2025-01-20T10:00:00.000Z", '
        '"channelId": null, "content": {"id": "t-1", "toolName": "lookup", "args": ' + args + "}}"
    )


def test_the_nesting_bound_does_not_depend_on_the_callers_stack() -> None:
    # The frame, its content and its args take three levels, the list depth + 1.
    fits, over = tool_request_frame(MAX_NESTING - 4), tool_request_frame(MAX_NESTING - 3)

    def at_depth(levels: int, text: str) -> object:
        if levels:
            return at_depth(levels - 1, text)
        try:
            return decode(text)
        except InvalidMessage as exc:
            return exc

    for levels in (0, 300, 700):
        assert isinstance(at_depth(levels, fits), WebsocketToolRequest), levels
        assert isinstance(at_depth(levels, over), InvalidMessage), levels


@pytest.mark.parametrize("depth", [MAX_NESTING + 1, 990, 100_000])
def test_a_frame_too_deep_to_decode_still_shows_its_envelope(depth: int) -> None:
    frame = tool_request_frame(depth)
    with pytest.raises(InvalidMessage):
        decode(frame)
    shallow = read_shallow(frame)
    assert shallow["type"] == "websocketToolRequest"
    assert shallow["content"] == {"id": "t-1", "toolName": "lookup", "args": None}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (r'{"a": [1, {"b": "]}[{"}], "c": "\\"}', {"a": [1, {"b": "]}[{"}], "c": "\\"}),
        ("not json", None),
        ("[" * 200 + "]" * 199, None),
    ],
)
def test_read_shallow_reads_what_it_can(text: str, expected: Any) -> None:
    assert read_shallow(text) == expected


def nested(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


def test_what_decode_accepts_encode_writes_back() -> None:
    # The deepest nesting decode takes, inside a free-form field, must also be
    # writable: a relay or an emulator echoes such values.
    args = {"v": nested(MAX_NESTING - 4)}
    text = json.dumps(
        {"type": "websocketToolRequest", "timestamp": "t", "content": {"id": "1", "toolName": "t"}}
    ).replace('"toolName": "t"', '"toolName": "t", "args": ' + json.dumps(args))
    decoded = decode(text)
    assert isinstance(decoded, WebsocketToolRequest)
    assert decode(encode(decoded)) == decoded


def test_encode_of_too_deep_a_value_is_a_local_protocol_error() -> None:
    response = WebsocketToolResponse(content=ToolResponseContent(id="1", result=nested(100_000)))
    with pytest.raises(LocalProtocolError):
        encode(response, now=0)


def test_encode_without_timestamp_or_now_is_a_local_protocol_error() -> None:
    with pytest.raises(LocalProtocolError, match="now="):
        encode(Terminate())
    # With a timestamp, no ``now`` is needed.
    assert json.loads(encode(Terminate(timestamp="t")))["timestamp"] == "t"


@pytest.mark.parametrize(
    "result", [{1, 2}, {"when": datetime(2025, 1, 1)}, object(), {("a", "b"): 1}]
)
def test_encode_of_a_non_json_value_is_a_local_protocol_error(result: object) -> None:
    response = WebsocketToolResponse(content=ToolResponseContent(id="1", result=result))
    with pytest.raises(LocalProtocolError, match="cannot encode websocketToolResponse"):
        encode(response, now=0)


def test_format_timestamp_examples() -> None:
    assert format_timestamp(0) == "1970-01-01T00:00:00.000Z"
    assert format_timestamp(1737367200) == "2025-01-20T10:00:00.000Z"
    assert format_timestamp(1737367200.1239) == "2025-01-20T10:00:00.123Z"
    assert format_timestamp(1737367200.9999) == "2025-01-20T10:00:00.999Z"


def test_encode_writes_compact_utf8_text() -> None:
    text = encode(IncomingChatMessage(content="Привет, 世界 🎉"), now=0)
    assert "Привет, 世界 🎉" in text
    assert ": " not in text
    assert ", " not in text.replace("Привет, 世界", "")


CASES: Final[list[tuple[Callable[[], Message], dict[str, Any]]]] = [
    (
        lambda: Initialize(
            request=InitializeRequest(
                call_type=CallType.ON_PHONE, additional_data={"userId": "u"}, endpoint="+15550100"
            )
        ),
        {
            "request": {
                "callType": "onPhone",
                "additionalData": {"userId": "u"},
                "endpoint": "+15550100",
            }
        },
    ),
    (
        lambda: SdpAnswer(data=SdpAnswerData(sdp_answer=SDP)),
        {"data": {"sdpAnswer": SDP}},
    ),
    (
        lambda: WebsocketToolRequest(
            content=ToolRequestContent(id="1", tool_name="update_card", args={"a": [1]})
        ),
        {"content": {"id": "1", "toolName": "update_card", "args": {"a": [1]}}},
    ),
    (
        lambda: Text(content=TextContent(source="assistant", text="Hi", type="potential")),
        {"content": {"source": "assistant", "text": "Hi", "type": "potential"}},
    ),
    (
        lambda: Error(data=ErrorData(message="Origin not allowed")),
        {"data": {"message": "Origin not allowed"}},
    ),
]


@pytest.mark.parametrize(("build", "payload"), CASES)
def test_encode_uses_camel_case_wire_names(
    build: Callable[[], Message], payload: dict[str, Any]
) -> None:
    sent = build()
    frame = json.loads(encode(sent, now=0))
    assert frame == {
        "type": sent.type,
        "timestamp": "1970-01-01T00:00:00.000Z",
        "channelId": None,
        **payload,
    }


def test_a_lone_surrogate_is_escaped_so_the_frame_stays_utf8() -> None:
    message = decode('{"type": "text", "content": {"source": "assistant", "text": "a\\ud800b"}}')
    frame = encode(message, now=0)
    frame.encode()  # no UnicodeEncodeError: the frame can go on the wire
    assert decode(frame) == attrs.evolve(message, timestamp=format_timestamp(0))
