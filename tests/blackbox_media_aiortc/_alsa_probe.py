"""``MicrophoneSource`` and ``SpeakerSink`` through real PortAudio streams on virtual ALSA PCMs.

Run as ``python -m tests.blackbox_media_aiortc._alsa_probe DIR`` with ``HOME=DIR``:
``DIR/.asoundrc`` (written by ``write_config``) defines two ALSA PCMs of the
``file`` plugin over the ``null`` device, so no sound card, server or package
beyond libasound2 is needed: ``blackbox_mic`` records what this script writes
into the FIFO ``DIR/mic.fifo`` (a 440 Hz tone), ``blackbox_speaker`` plays into
the FIFO ``DIR/speaker.fifo``, which this script reads. The ``null`` device
keeps no time, so the FIFOs are what paces the streams. It prints one JSON
object: what the microphone recorded and what the speaker played; then how
much a second speaker dropped when interrupted at once, and what it played.

A separate process, because PortAudio reads the ALSA configuration once, when
sounddevice is imported.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import math
import sys
import threading
import time
from array import array
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from blackbox_protocol import AudioFrame

MIC_TONE = 440.0
SPEAKER_TONE = 1000.0
RATE = 48000
#: Everything the speaker's FIFO gave, appended by the draining thread.
PLAYED = bytearray()

CONFIG = """
pcm.blackbox_mic {{
    type file
    slave.pcm "null"
    file "/dev/null"
    infile "{dir}/mic.fifo"
    format "raw"
}}
pcm.blackbox_speaker {{
    type file
    slave.pcm "null"
    file "{dir}/speaker.fifo"
    format "raw"
}}
"""


def write_config(directory: Path) -> None:
    """The ALSA configuration and the FIFOs, in ``directory`` (to be ``HOME``)."""
    import os

    (directory / ".asoundrc").write_text(CONFIG.format(dir=directory))
    for name in ("mic.fifo", "speaker.fifo"):
        os.mkfifo(directory / name)


def tone(frequency: float, count: int, start: int = 0) -> bytes:
    return array(
        "h",
        (
            round(8000 * math.sin(2 * math.pi * frequency * n / RATE))
            for n in range(start, start + count)
        ),
    ).tobytes()


def feed(path: Path, stop: threading.Event) -> None:
    """Keep the microphone's FIFO full of tone; PortAudio opens and closes it as it probes."""
    second = tone(MIC_TONE, RATE)
    while not stop.is_set():
        try:
            with path.open("wb") as fifo:
                while not stop.is_set():
                    fifo.write(second)
        except BrokenPipeError:
            continue


def drain(path: Path, played: bytearray, stop: threading.Event) -> None:
    """Read the speaker's FIFO at about real time, keeping everything."""
    while not stop.is_set():
        with path.open("rb") as fifo:
            # A small pipe, so that the speaker, on a device that keeps no time,
            # runs about as fast as this loop reads.
            fcntl.fcntl(fifo, fcntl.F_SETPIPE_SZ, 4096)
            while chunk := fifo.read(RATE // 50 * 2):
                played.extend(chunk)
                time.sleep(0.01)


def speaker_frames() -> list[AudioFrame]:
    """What the probe plays: 0.5 s of ``SPEAKER_TONE`` in 20 ms frames."""
    from blackbox_protocol import AudioFrame

    count = RATE // 50
    return [AudioFrame(tone(SPEAKER_TONE, count, i * count), RATE, 1) for i in range(25)]


async def probe() -> dict[str, object]:
    from blackbox_media_aiortc.devices import MicrophoneSource, SpeakerSink, list_devices

    devices = [d.name for d in list_devices()]
    loop = asyncio.get_running_loop()

    recorded: list[AudioFrame] = []
    async with MicrophoneSource("blackbox_mic", RATE) as mic:
        deadline = loop.time() + 5
        while sum(f.samples for f in recorded) < RATE // 2 and loop.time() < deadline:
            frame = await mic.read()
            if frame is None:
                await asyncio.sleep(0.005)
            else:
                recorded.append(frame)

    speaker = SpeakerSink("blackbox_speaker")
    for frame in speaker_frames():
        await speaker.write(frame)
    await asyncio.sleep(1.0)
    await speaker.close()

    # 0.5 s queued at once, then interrupted: only what PortAudio took may sound.
    mark = len(PLAYED)
    interrupted = SpeakerSink("blackbox_speaker")
    for frame in speaker_frames():
        await interrupted.write(frame)
    dropped = interrupted.interrupt()
    await asyncio.sleep(0.5)
    await interrupted.close()
    after = array("h", PLAYED[mark : len(PLAYED) // 2 * 2])
    return {
        "played_before_interrupt": mark,
        "interrupt_dropped": dropped,
        "sounding_after_interrupt": sum(1 for sample in after if sample),
        "devices": devices,
        "recorded": b"".join(f.pcm for f in recorded).hex(),
        "recorded_formats": sorted({(f.sample_rate, f.channels) for f in recorded}),
        "speaker_dropped": speaker.dropped,
    }


def main() -> None:
    directory = Path(sys.argv[1])
    stop = threading.Event()
    threading.Thread(target=feed, args=(directory / "mic.fifo", stop), daemon=True).start()
    threading.Thread(
        target=drain, args=(directory / "speaker.fifo", PLAYED, stop), daemon=True
    ).start()
    result = asyncio.run(probe())
    stop.set()
    mark = result.pop("played_before_interrupt")
    assert isinstance(mark, int)
    result["played"] = bytes(PLAYED[: mark // 2 * 2]).hex()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
