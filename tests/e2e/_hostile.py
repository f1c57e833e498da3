"""A hostile BlackBox server: a real WebSocket server that sends whatever its script says.

The emulator plays by the rules and injects named faults; this server breaks
any rule a test asks it to: raw frames of any size or shape, repeated tool
request ids, close codes mid-call, a dropped TCP connection, HTTP refusals
(websockets' ``process_request``). A script is an async function of a
``Peer``, one client's connection; it runs on the server's own asyncio loop in
a thread, so the client under test runs on asyncio or trio alike. A voice
script gets a real WebRTC peer (the emulator's ``VoicePeer``) from
``Peer.start_voice``.

What the client sent is in ``Peer.received``; a script that fails (an
assertion, a timeout) fails the test when the server stops.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
from blackbox_protocol import ConversationResultData, Message, decode, encode
from blackbox_protocol.messages import ConversationResult as Result
from blackbox_protocol.messages import (
    Event,
    EventData,
    Initialize,
    SdpAnswer,
    SdpInvite,
    SdpInviteData,
    Text,
    TextContent,
    ToolRequestContent,
    WebsocketToolRequest,
)
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from tests.e2e._threaded_server import threaded_server

if TYPE_CHECKING:
    from blackbox_emulator.voice import VoicePeer

__all__ = ["HostileServer", "Peer", "Script", "hostile_server"]

#: The bound on each wait of a script for the client, in seconds.
WAIT = 10.0

M = TypeVar("M", bound=Message)


class Peer:
    """One client's connection, as the hostile server sees it.

    Args:
        websocket: the server end of the client's WebSocket.
    """

    def __init__(self, websocket: ServerConnection) -> None:
        self.websocket = websocket
        self.received: list[Message] = []
        """Every frame the client sent, decoded, in order."""
        self.voice: VoicePeer | None = None
        """The WebRTC peer, once ``start_voice`` made it."""

    # Reading what the client sends.

    async def receive(self, timeout: float = WAIT) -> Message:
        """The client's next message.

        Raises:
            ConnectionClosed: the client closed first.
            TimeoutError: nothing within ``timeout`` seconds.
        """
        with anyio.fail_after(timeout):
            frame = await self.websocket.recv()
        assert isinstance(frame, str), "the client sends text frames only"
        message = decode(frame)
        self.received.append(message)
        return message

    async def expect(self, kind: type[M], timeout: float = WAIT) -> M:
        """Read until the client sends a ``kind`` message (at most ``timeout`` seconds)."""
        with anyio.fail_after(timeout):
            while not isinstance(message := await self.receive(), kind):
                pass
        return message

    async def until_closed(self, timeout: float = WAIT) -> None:
        """Read (into ``received``) until the client closes the connection."""
        with anyio.fail_after(timeout):
            try:
                while True:
                    await self.receive(timeout)
            except ConnectionClosed:
                return

    # Sending, by the rules or not.

    async def send(self, frame: str | bytes) -> None:
        """Send one raw frame, valid or not."""
        await self.websocket.send(frame)

    async def send_message(self, message: Message) -> None:
        """Send a message, encoded as the service would."""
        await self.send(encode(message, now=time.time()))

    async def accept(self, job_id: str = "hostile-1") -> Initialize:
        """Wait for ``initialize`` and send ``event connection``; return the ``initialize``."""
        initialize = await self.expect(Initialize)
        await self.send_message(Event(name="connection", data=EventData(job_id=job_id)))
        return initialize

    async def say(self, text: str) -> None:
        """Send the agent's text."""
        await self.send_message(Text(content=TextContent(source="assistant", text=text)))

    async def request_tool(self, tool_id: str, name: str, args: Mapping[str, Any]) -> None:
        """Ask for a tool, with any id (a repeated one too)."""
        content = ToolRequestContent(id=tool_id, tool_name=name, args=args)
        await self.send_message(WebsocketToolRequest(content=content))

    async def offer(self, sdp: str) -> None:
        """Send an ``sdpInvite`` carrying ``sdp``, of any size or content."""
        await self.send_message(SdpInvite(data=SdpInviteData(invite=sdp)))

    async def end(self, status: str = "Completed") -> None:
        """Send the conversation's result."""
        await self.send_message(Result(result=ConversationResultData(status=status)))

    async def close(self, code: int, reason: str = "") -> None:
        """The closing handshake with ``code``."""
        await self.websocket.close(code, reason)

    def drop(self) -> None:
        """Abort the TCP connection: no close frame (the client sees 1006)."""
        transport = self.websocket.transport
        assert transport is not None, "the connection is open"
        transport.abort()

    # Voice.

    async def start_voice(self) -> VoicePeer:
        """Offer real WebRTC audio, apply the client's answer, wait until connected.

        The peer is closed when the connection's script ends.
        """
        # Imported here: aiortc takes the best part of a second to import.
        from blackbox_emulator.voice import VoicePeer

        self.voice = VoicePeer(offer_style="browser")
        await self.offer(await self.voice.offer())
        answer = await self.expect(SdpAnswer)
        await self.voice.answered(answer.data.sdp_answer)
        return self.voice


Script = Callable[[Peer], Awaitable[None]]


@dataclass
class HostileServer:
    """A running hostile server."""

    url: str
    #: One ``Peer`` per connection so far, in order.
    peers: list[Peer] = field(default_factory=list)
    #: What the scripts raised (besides the client going away).
    failures: list[BaseException] = field(default_factory=list)


@contextmanager
def hostile_server(script: Script, **options: Any) -> Iterator[HostileServer]:
    """Run ``script`` for every connection, on 127.0.0.1; yield the server.

    ``options`` go to websockets' ``serve`` (``process_request`` answers the
    upgrade request itself: an HTTP refusal). A script's failure is raised as
    an ``AssertionError`` when the block ends.
    """
    served: list[HostileServer] = []

    async def handler(websocket: ServerConnection) -> None:
        peer = Peer(websocket)
        served[0].peers.append(peer)
        try:
            await script(peer)
        except ConnectionClosed:
            pass  # the client went away: a script may not wait for that
        except Exception as exc:  # reported to the test below
            served[0].failures.append(exc)
        finally:
            if peer.voice is not None:
                await peer.voice.aclose()

    with threaded_server(handler, **options) as port:
        served.append(HostileServer(f"ws://127.0.0.1:{port}"))
        yield served[0]
    if served[0].failures:
        raise AssertionError(f"the hostile server's script failed: {served[0].failures!r}")
