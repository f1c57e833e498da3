"""``TurnScript``: each clip waits for the agent to finish, or for ``agent_wait`` of silence."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import anyio
import numpy as np
import pytest
from blackbox_media_file import (
    AgentStarted,
    AgentStopped,
    ClipFinished,
    ClipStarted,
    FileError,
    StartReason,
    TurnEvent,
    TurnScript,
)
from blackbox_protocol import AudioFrame

from tests.blackbox_media_file._audio import (
    dominant_frequency,
    silent_frame,
    tone,
    tone_frame,
    write_wav,
)

pytestmark = pytest.mark.anyio

STEP = 0.02


@pytest.fixture
def clips(tmp_path: Path) -> list[Path]:
    """Two 0.2 s clips: 440 Hz, then 660 Hz."""
    return [
        write_wav(tmp_path / "one.wav", tone(440, 0.2, 48000), 48000),
        write_wav(tmp_path / "two.wav", tone(660, 0.2, 48000), 48000),
    ]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def drive(
    script: TurnScript, clock: Clock, seconds: float, agent: Callable[[float], bool]
) -> list[tuple[float, AudioFrame | None]]:
    """Run the script on a simulated 20 ms beat; ``agent(t)`` says if the agent talks at t."""
    played = []
    for step in range(round(seconds / STEP)):
        clock.now = step * STEP
        script.observe(tone_frame(200, index=step) if agent(clock.now) else silent_frame())
        played.append((clock.now, await script.read()))
    return played


def starts(script: TurnScript) -> list[tuple[int, float, StartReason]]:
    return [
        (e.index, round(e.at, 2), e.reason) for e in script.events if isinstance(e, ClipStarted)
    ]


async def test_each_clip_waits_until_the_agent_has_been_silent_long_enough(
    clips: list[Path],
) -> None:
    clock = Clock()
    script = TurnScript(clips, silence_after_agent=0.3, agent_wait=1.0, clock=clock)

    def agent(t: float) -> bool:
        # A greeting, then a reply with a 0.2 s pause in it (shorter than 0.3 s).
        return 0.1 <= t < 0.5 or 1.3 <= t < 1.4 or 1.6 <= t < 1.7

    played = await drive(script, clock, 3.0, agent)

    # The greeting's last voiced frame was at 0.48; 0.3 s later the first clip
    # starts. It plays 0.2 s (to 1.0); the reply ends at 1.68; the second clip
    # starts 0.3 s after that, not in the pause.
    assert starts(script) == [
        (0, 0.78, StartReason.AGENT_FINISHED),
        (1, 1.98, StartReason.AGENT_FINISHED),
    ]
    assert [(type(e).__name__, round(e.at, 2)) for e in script.events] == [
        ("AgentStarted", 0.1),
        ("AgentStopped", 0.78),
        ("ClipStarted", 0.78),
        ("ClipFinished", 0.98),
        ("AgentStarted", 1.3),
        ("AgentStopped", 1.98),
        ("ClipStarted", 1.98),
        ("ClipFinished", 2.18),
    ]
    stopped = [e for e in script.events if isinstance(e, AgentStopped)]
    assert [round(e.last_voice_at, 2) for e in stopped] == [0.48, 1.68]
    sound = {round(t, 2): f for t, f in played if f is not None}
    assert sorted(sound) == [round(0.78 + i * STEP, 2) for i in range(10)] + [
        round(1.98 + i * STEP, 2) for i in range(10)
    ]
    first = b"".join(sound[round(0.78 + i * STEP, 2)].pcm for i in range(10))
    second = b"".join(sound[round(1.98 + i * STEP, 2)].pcm for i in range(10))
    assert dominant_frequency(np.frombuffer(first, "<i2"), 48000) == pytest.approx(440, abs=5)
    assert dominant_frequency(np.frombuffer(second, "<i2"), 48000) == pytest.approx(660, abs=5)
    assert script.done


async def test_a_silent_agent_gets_agent_wait_then_the_clip_plays(clips: list[Path]) -> None:
    clock = Clock()
    script = TurnScript(clips, silence_after_agent=0.3, agent_wait=1.0, clock=clock)

    await drive(script, clock, 3.0, lambda t: False)

    assert starts(script) == [
        (0, 1.0, StartReason.AGENT_SILENT),
        (1, 2.2, StartReason.AGENT_SILENT),  # 1.0 + 0.2 s of clip + 1.0
    ]
    assert not any(isinstance(e, AgentStarted | AgentStopped) for e in script.events)


async def test_an_agent_that_never_stops_is_cut_off_at_max_wait(clips: list[Path]) -> None:
    clock = Clock()
    script = TurnScript(clips, silence_after_agent=0.3, agent_wait=0.5, max_wait=1.5, clock=clock)

    await drive(script, clock, 2.0, lambda t: True)

    assert starts(script)[0] == (0, 1.5, StartReason.MAX_WAIT)


async def test_events_go_to_the_callback_as_they_happen(clips: list[Path]) -> None:
    clock = Clock()
    seen: list[TurnEvent] = []
    script = TurnScript(clips[:1], agent_wait=0.1, clock=clock, on_event=seen.append)

    await drive(script, clock, 0.5, lambda t: False)

    assert seen == script.events
    assert [type(e) for e in seen] == [ClipStarted, ClipFinished]
    assert isinstance(seen[0], ClipStarted)
    assert seen[0].path == clips[0]
    assert script.started_at == 0.0
    assert script.done


async def test_closing_stops_the_script(clips: list[Path]) -> None:
    script = TurnScript(clips, agent_wait=0.0)
    assert await script.read() is not None

    await script.close()
    await script.close()

    assert script.done
    assert await script.read() is None


async def test_it_is_a_sink_too(clips: list[Path]) -> None:
    script = TurnScript(clips)
    await script.write(tone_frame(440))
    assert script.agent_speaking
    assert isinstance(script.events[0], AgentStarted)


def test_bad_clips_and_options_fail_when_the_script_is_made(
    tmp_path: Path, clips: list[Path]
) -> None:
    with pytest.raises(FileError, match="no such file"):
        TurnScript([*clips, tmp_path / "missing.wav"])
    with pytest.raises(ValueError, match="at least one clip"):
        TurnScript([])
    with pytest.raises(ValueError, match="silence_after_agent must be zero or more"):
        TurnScript(clips, silence_after_agent=-1)
    with pytest.raises(ValueError, match="max_wait"):
        TurnScript(clips, agent_wait=10, max_wait=5)


async def test_in_real_time_the_next_clip_follows_the_agents_silence(clips: list[Path]) -> None:
    """The script, read every 20 ms of real time, with an agent that answers each clip."""
    script = TurnScript(clips, silence_after_agent=0.15, agent_wait=2.0)
    answer_until = anyio.current_time() + 0.2  # the greeting: 0.2 s of voice

    async def agent() -> None:
        nonlocal answer_until
        index = 0
        while not script.done:
            talking = anyio.current_time() < answer_until
            script.observe(tone_frame(200, index=index) if talking else silent_frame())
            index += 1
            await anyio.sleep(STEP)

    async def session() -> None:
        nonlocal answer_until
        finished = 0
        while not script.done:
            await script.read()
            ended = [e for e in script.events if isinstance(e, ClipFinished)]
            if len(ended) > finished:  # the agent answers each clip, 0.1 s later, for 0.2 s
                finished = len(ended)
                answer_until = anyio.current_time() + 0.3
            await anyio.sleep(STEP)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(agent)
            tasks.start_soon(session)

    started = [e for e in script.events if isinstance(e, ClipStarted)]
    stopped = [e for e in script.events if isinstance(e, AgentStopped)]
    assert [e.reason for e in started] == [StartReason.AGENT_FINISHED] * 2
    assert len(stopped) == 2
    for clip, agent_done in zip(started, stopped, strict=True):
        assert clip.at - agent_done.last_voice_at >= 0.15
        assert clip.at - agent_done.last_voice_at < 0.15 + 0.25  # and not much later
    # The second clip did not start before the agent's answer to the first.
    first_finished = next(e for e in script.events if isinstance(e, ClipFinished))
    assert stopped[1].last_voice_at > first_finished.at


async def test_in_real_time_a_silent_agent_waits_agent_wait(clips: list[Path]) -> None:
    script = TurnScript(clips[:1], agent_wait=0.3)
    with anyio.fail_after(5):
        while not script.done:
            await script.read()
            await anyio.sleep(STEP)

    assert script.started_at is not None
    (started,) = [e for e in script.events if isinstance(e, ClipStarted)]
    assert started.reason is StartReason.AGENT_SILENT
    assert 0.3 <= started.at - script.started_at < 0.3 + 0.25
