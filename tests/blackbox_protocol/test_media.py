"""The media contract: what every AudioSession backend provides."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from blackbox_protocol import AudioFrame, AudioSession, MediaError, MediaState

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Loopback(AudioSession):
    """A minimal backend: answers with the offer, 'receives' what it was given."""

    def __init__(self, frames: list[AudioFrame]) -> None:
        self._state = MediaState.NEW
        self._frames = frames
        self.closes = 0

    @property
    def state(self) -> MediaState:
        return self._state

    async def answer(self, offer: str) -> str:
        self._state = MediaState.CONNECTED
        return offer.replace("a=sendrecv", "a=recvonly")

    async def state_changes(self) -> AsyncIterator[MediaState]:
        yield self._state

    async def received_audio(self) -> AsyncIterator[AudioFrame]:
        for frame in self._frames:
            yield frame

    async def close(self) -> None:
        if self._state is not MediaState.CLOSED:
            self.closes += 1
            self._state = MediaState.CLOSED


def test_the_contract_is_abstract() -> None:
    with pytest.raises(TypeError, match="abstract"):
        AudioSession()  # type: ignore[abstract]


async def test_the_context_manager_closes_once_even_when_closed_twice() -> None:
    frame = AudioFrame(pcm=b"\x00\x01" * 160, sample_rate=8000)
    async with Loopback([frame]) as session:
        assert await session.answer("v=0\r\na=sendrecv\r\n") == "v=0\r\na=recvonly\r\n"
        assert [s async for s in session.state_changes()] == [MediaState.CONNECTED]
        assert [f async for f in session.received_audio()] == [frame]
        await session.close()
    assert session.state is MediaState.CLOSED
    assert session.closes == 1
    assert session.failure is None  # the contract's default: no reason known


def test_a_backend_that_cannot_interrupt_or_mute_says_so_by_name() -> None:
    session = Loopback([])
    assert session.muted is False
    with pytest.raises(MediaError, match=r"^Loopback cannot interrupt the agent's audio$"):
        session.interrupt()
    for method in (session.mute, session.unmute):
        with pytest.raises(MediaError, match=r"^Loopback cannot mute the caller's audio$"):
            method()
    assert session.muted is False
    assert session.state is MediaState.NEW  # refusing changed nothing


def test_an_audio_frame_knows_its_length() -> None:
    stereo = AudioFrame(pcm=bytes(4 * 480), sample_rate=48000, channels=2)
    assert stereo.samples == 480
    assert stereo.duration == pytest.approx(0.01)
    assert AudioFrame(pcm=bytes(320), sample_rate=8000).duration == pytest.approx(0.02)
