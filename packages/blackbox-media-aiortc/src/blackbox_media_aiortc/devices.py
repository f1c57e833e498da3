"""Microphone and speaker on PortAudio, through sounddevice: the ``devices`` extra.

Install it with ``pip install "blackbox-media-aiortc[devices]"``; sounddevice
needs the PortAudio library (bundled in its wheels for Windows and macOS; on
Debian and Ubuntu: ``apt-get install libportaudio2``). Without either, making a
``MicrophoneSource`` or ``SpeakerSink``, or calling ``list_devices()``, raises
a ``DeviceError`` that says so.

PortAudio calls back on its own thread; these classes hand audio between that
thread and the event loop through small bounded buffers, so neither side ever
blocks the other, and latency cannot pile up.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Final

from blackbox_protocol import AudioFrame

from blackbox_media_aiortc.errors import DeviceError

__all__ = [
    "INSTALL_HINT",
    "AudioDevice",
    "MicrophoneSource",
    "SpeakerSink",
    "list_devices",
]

#: What to run when sounddevice or PortAudio is missing.
INSTALL_HINT: Final = (
    'pip install "blackbox-media-aiortc[devices]" '
    "(and on Debian or Ubuntu: apt-get install libportaudio2)"
)
_BLOCK: Final = 0.020  # seconds per block: the session's packet time

#: A device as sounddevice takes it: its index, or (part of) its name.
DeviceSpec = int | str | None


def _sounddevice() -> ModuleType:
    """sounddevice, imported on first use (it loads PortAudio as it imports)."""
    try:
        import sounddevice  # type: ignore[import-untyped]  # it ships no type hints
    except ImportError as exc:
        raise DeviceError(f"microphone and speaker need sounddevice: {INSTALL_HINT}") from exc
    except OSError as exc:  # sounddevice's own: "PortAudio library not found"
        raise DeviceError(f"microphone and speaker need PortAudio ({exc}): {INSTALL_HINT}") from exc
    module: ModuleType = sounddevice
    return module


@dataclass(frozen=True, slots=True)
class AudioDevice:
    """A microphone, a speaker, or both, as PortAudio lists it."""

    #: The number to pass as ``device=``.
    index: int
    name: str
    #: The host API it is reached through (``ALSA``, ``PulseAudio``, ``Core Audio``...).
    host_api: str
    input_channels: int
    output_channels: int
    default_sample_rate: float
    #: Whether it is the default input (microphone).
    default_input: bool
    #: Whether it is the default output (speaker).
    default_output: bool

    @property
    def is_input(self) -> bool:
        """Whether it can record."""
        return self.input_channels > 0

    @property
    def is_output(self) -> bool:
        """Whether it can play."""
        return self.output_channels > 0


def list_devices() -> list[AudioDevice]:
    """Every device that can record or play, in PortAudio's order.

    Raises:
        DeviceError: sounddevice or PortAudio is missing (the message says how to install it).
    """
    sd = _sounddevice()
    apis = [api["name"] for api in sd.query_hostapis()]
    default_in, default_out = (_index(x) for x in sd.default.device)
    devices = []
    for info in sd.query_devices():
        if info["max_input_channels"] == 0 and info["max_output_channels"] == 0:
            continue
        devices.append(
            AudioDevice(
                index=info["index"],
                name=info["name"],
                host_api=apis[info["hostapi"]],
                input_channels=info["max_input_channels"],
                output_channels=info["max_output_channels"],
                default_sample_rate=info["default_samplerate"],
                default_input=info["index"] == default_in,
                default_output=info["index"] == default_out,
            )
        )
    return devices


def _index(value: Any) -> int | None:
    return value if isinstance(value, int) and value >= 0 else None


class MicrophoneSource:
    """An ``AudioSource`` recording a microphone, 20 ms blocks of s16 PCM.

    The device is opened at once (so a wrong one fails before any call) and
    starts recording at the first ``read()``. When reads fall behind, the
    oldest blocks are dropped (counted in ``dropped``) beyond ``max_latency``.

    Args:
        device: the input device: index, (part of) its name, or ``None`` for the default.
        sample_rate: the rate to record at.
        channels: how many channels to record (the session mixes them to mono).
        max_latency: seconds of audio kept waiting for ``read()``.

    Raises:
        DeviceError: sounddevice or PortAudio is missing, or the device cannot
            be opened (no such device, or not at this rate).
    """

    def __init__(
        self,
        device: DeviceSpec = None,
        sample_rate: int = 48000,
        *,
        channels: int = 1,
        max_latency: float = 0.2,
    ) -> None:
        sd = _sounddevice()
        self.sample_rate = sample_rate
        self.channels = channels
        self.dropped = 0
        """Blocks dropped, unread, to keep the latency down."""
        self._blocks: deque[bytes] = deque(maxlen=max(1, round(max_latency / _BLOCK)))
        try:
            self._stream = sd.RawInputStream(
                samplerate=sample_rate,
                blocksize=round(sample_rate * _BLOCK),
                device=device,
                channels=channels,
                dtype="int16",
                callback=self._recorded,
            )
        except (sd.PortAudioError, ValueError) as exc:
            raise DeviceError(f"cannot open the microphone {device!r}: {exc}") from exc
        self._started = False
        self._closed = False

    def _recorded(self, data: Any, frames: int, time: Any, status: Any) -> None:
        # PortAudio's thread: deque appends are atomic, and maxlen drops the oldest.
        if len(self._blocks) == self._blocks.maxlen:
            self.dropped += 1
        self._blocks.append(bytes(data))

    async def read(self) -> AudioFrame | None:
        """The oldest block not read yet, or ``None`` if there is none now (or closed)."""
        if self._closed:
            return None
        if not self._started:
            self._started = True
            self._stream.start()
        try:
            pcm = self._blocks.popleft()
        except IndexError:
            return None
        return AudioFrame(pcm, self.sample_rate, self.channels)

    async def close(self) -> None:
        """Stop recording and release the device. Idempotent."""
        if not self._closed:
            self._closed = True
            self._stream.close(ignore_errors=True)

    async def __aenter__(self) -> MicrophoneSource:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


class SpeakerSink:
    """An ``AudioSink`` playing through a speaker.

    The output stream opens at the first frame, at its rate and channel
    count. PortAudio pulls audio as it plays; when none is waiting it plays
    silence, and more than ``max_latency`` waiting drops the oldest.
    ``interrupt()`` drops everything waiting (the session's ``interrupt()``
    calls it); only the block PortAudio is playing, 20 ms, still sounds.

    Args:
        device: the output device: index, (part of) its name, or ``None`` for the default.
        max_latency: seconds of audio kept waiting to be played.

    Raises:
        DeviceError: sounddevice or PortAudio is missing, or there is no such
            output device (checked at once); or, from ``write()``, the device
            cannot play this frame's format.
    """

    def __init__(self, device: DeviceSpec = None, *, max_latency: float = 0.5) -> None:
        self._sd = _sounddevice()
        try:
            self._sd.query_devices(device, "output")
        except (self._sd.PortAudioError, ValueError) as exc:
            raise DeviceError(f"no speaker {device!r}: {exc}") from exc
        self.device = device
        self.max_latency = max_latency
        self.dropped = 0
        """Bytes of audio dropped to keep the latency down."""
        self._stream: Any = None
        self._format: tuple[int, int] | None = None
        self._pending = bytearray()
        self._lock = threading.Lock()
        self._closed = False

    async def write(self, frame: AudioFrame) -> None:
        """Queue a frame to be played (ignored once closed)."""
        if self._closed:
            return
        if (frame.sample_rate, frame.channels) != self._format:
            self._open(frame.sample_rate, frame.channels)
        limit = round(self.max_latency * frame.sample_rate) * 2 * frame.channels
        with self._lock:
            self._pending += frame.pcm
            excess = len(self._pending) - limit
            if excess > 0:
                del self._pending[:excess]
                self.dropped += excess

    def interrupt(self) -> float:
        """Drop the audio waiting to be played; return its length in seconds."""
        with self._lock:
            waiting = len(self._pending)
            self._pending.clear()
        if self._format is None:
            return 0.0
        sample_rate, channels = self._format
        return waiting / (2 * channels * sample_rate)

    def _open(self, sample_rate: int, channels: int) -> None:
        self._shut()
        try:
            self._stream = self._sd.RawOutputStream(
                samplerate=sample_rate,
                blocksize=round(sample_rate * _BLOCK),
                device=self.device,
                channels=channels,
                dtype="int16",
                callback=self._play,
            )
            self._stream.start()
        except (self._sd.PortAudioError, ValueError) as exc:
            self._stream = None
            raise DeviceError(
                f"cannot play {channels} channel(s) at {sample_rate} Hz on {self.device!r}: {exc}"
            ) from exc
        self._format = (sample_rate, channels)

    def _play(self, data: Any, frames: int, time: Any, status: Any) -> None:
        # PortAudio's thread: take what is waiting, and make up the rest with silence.
        size = len(data)
        with self._lock:
            chunk = bytes(self._pending[:size])
            del self._pending[:size]
        data[:] = chunk + bytes(size - len(chunk))

    def _shut(self) -> None:
        if self._stream is not None:
            self._stream.close(ignore_errors=True)
            self._stream = None
        with self._lock:
            self._pending.clear()

    async def close(self) -> None:
        """Stop playing and release the device. Idempotent."""
        if not self._closed:
            self._closed = True
            self._shut()
