"""``blackbox call``: a voice call, from files (``--play``) or the microphone and speaker."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from blackbox_protocol import (
    AudioSession,
    BlackBoxError,
    CallType,
    ConversationResultData,
    connect,
)

from blackbox_cli._options import (
    UsageError,
    additional_data,
    device,
    file_path,
    positive,
    server,
    timeouts,
    token,
)
from blackbox_cli._outcome import check_result
from blackbox_cli._output import HumanPrinter, JsonPrinter, Printer

__all__ = ["TurnsAnswered", "add_call_options", "place_call", "run_call"]


def add_call_options(parser: argparse.ArgumentParser) -> None:
    """The options of ``blackbox call`` beyond the connection ones."""
    parser.add_argument(
        "--play",
        metavar="FILE",
        action="append",
        type=file_path,
        default=[],
        help="play FILE (any format PyAV decodes) as the caller instead of the microphone; "
        "repeat for a turn script: each clip once the agent has finished speaking",
    )
    parser.add_argument(
        "--record", metavar="FILE", type=file_path, help="record the agent to a WAV"
    )
    parser.add_argument(
        "--record-stereo",
        metavar="FILE",
        type=file_path,
        help="record both sides to one stereo WAV (left: what we sent, right: the agent)",
    )
    parser.add_argument(
        "--duration",
        metavar="S",
        type=positive,
        help="hang up after S seconds (default: with --play, once the last clip is answered; "
        "else when the agent ends or on Ctrl-C)",
    )
    parser.add_argument(
        "--input-device",
        metavar="DEVICE",
        type=device,
        help="microphone (name or index; see blackbox devices)",
    )
    parser.add_argument(
        "--output-device",
        metavar="DEVICE",
        type=device,
        help="speaker (name or index; see blackbox devices)",
    )
    parser.add_argument(
        "--half-duplex",
        action="store_true",
        help="mute the microphone while the agent is heard (an echo policy for open speakers)",
    )


async def run_call(args: argparse.Namespace) -> int:
    """Run ``blackbox call``; return the exit status (errors, and a ``Failed`` result, are raised).

    Every option is checked before the media is made: making it opens the
    devices and creates the recordings, replacing files of those names.
    """
    printer: Printer = JsonPrinter() if args.json else HumanPrinter(show_user=True)
    options: dict[str, Any] = {
        "token": token(args),
        "server": server(args),
        "additional_data": additional_data(args.data),
        "origin": args.origin,
        "allow_insecure": args.insecure,
        "timeouts": timeouts(args),
    }
    media, until = _media(args)
    result = await place_call(
        media=media, printer=printer, until=until, duration=args.duration, **options
    )
    check_result(result)
    return 0


async def place_call(
    token: str,
    *,
    server: str,
    media: AudioSession,
    printer: Printer,
    until: Callable[[], Awaitable[object]] | None = None,
    duration: float | None = None,
    **options: Any,
) -> ConversationResultData | None:
    """Call the agent; hang up after ``duration``, once ``until()`` returns, or when it ends.

    Returns:
        the conversation's result, whoever ended it; ``None`` if none came.
    """
    async with (
        connect(token, call_type=CallType.WEB_CALL, server=server, media=media, **options) as call,
        anyio.create_task_group() as task_group,
    ):

        async def show_events() -> None:
            try:
                async for event in call:
                    printer.event(event)
            except BlackBoxError as exc:
                printer.failed(exc)
                raise
            task_group.cancel_scope.cancel()

        task_group.start_soon(show_events)
        with anyio.move_on_after(duration if duration is not None else float("inf")):
            await (until or anyio.sleep_forever)()
        await call.terminate()
    return call.result


def _media(args: argparse.Namespace) -> tuple[AudioSession, Callable[[], Awaitable[None]] | None]:
    """The session for the options, and what to await before hanging up."""
    from blackbox_media_file import FileError, FileSession, check_recording_paths

    recordings = [path for path in (args.record, args.record_stereo) if path is not None]
    try:
        check_recording_paths(recordings, clips=args.play)
    except FileError as exc:
        raise UsageError(str(exc)) from None
    if not args.play:
        return _device_media(args), None
    ignored = [
        option
        for option, given in (
            ("--input-device", args.input_device is not None),
            ("--output-device", args.output_device is not None),
            ("--half-duplex", args.half_duplex),
        )
        if given
    ]
    if ignored:
        raise UsageError(
            f"{', '.join(ignored)}: for the microphone and speaker, which --play replaces"
        )
    turns = TurnsAnswered(len(args.play))
    try:
        # Even one clip is a turn script: it waits for the agent's greeting to end.
        session = FileSession(
            args.play, record=args.record, record_stereo=args.record_stereo, on_event=turns.saw
        )
    except FileError as exc:
        raise UsageError(str(exc)) from None
    return session, turns.wait


class TurnsAnswered:
    """Tells when a turn script is done: its last clip played, and the agent answered.

    The agent may not answer at all; after ``reply_wait`` seconds of its
    silence past the last clip, the script is done anyway.

    It listens to the audio (the turn script's voice activity), not to the
    core's ``ReplyEnded``: a reply's text comes as the agent starts saying it,
    so it ends before its audio has been heard, and hanging up then would cut
    the agent off (and the recording short).
    """

    def __init__(self, clips: int, *, reply_wait: float = 5.0) -> None:
        self._clips_left = clips
        self._reply_wait = reply_wait
        self._played = anyio.Event()
        self._answered = anyio.Event()

    def saw(self, event: object) -> None:
        """Note a turn event of the file backend (``on_event``)."""
        from blackbox_media_file import AgentStopped, ClipFinished

        if isinstance(event, ClipFinished):
            self._clips_left -= 1
            if self._clips_left == 0:
                self._played.set()
        elif isinstance(event, AgentStopped) and self._played.is_set():
            self._answered.set()

    async def wait(self) -> None:
        """Return once the script is done."""
        await self._played.wait()
        with anyio.move_on_after(self._reply_wait):
            await self._answered.wait()


def _device_media(args: argparse.Namespace) -> AudioSession:
    from blackbox_media_aiortc import AiortcSession, DeviceError, EchoPolicy
    from blackbox_media_aiortc.devices import MicrophoneSource, SpeakerSink
    from blackbox_media_file import FanOutSink, StereoRecorder, TeeSource, WavRecorder

    # The devices first: one that is missing must fail before a recording replaces a file.
    try:
        source: Any = MicrophoneSource(args.input_device)
        sinks: list[Any] = [SpeakerSink(args.output_device)]
    except DeviceError as exc:  # as blackbox devices reports it: the machine's set-up
        raise UsageError(str(exc)) from None
    if args.record is not None:
        sinks.append(WavRecorder(args.record))
    if args.record_stereo is not None:
        stereo = StereoRecorder(args.record_stereo)
        source = TeeSource(source, stereo.sent)
        sinks.append(stereo.received)
    policy = EchoPolicy.HALF_DUPLEX if args.half_duplex else EchoPolicy.NONE
    return AiortcSession(source, FanOutSink(*sinks), echo_policy=policy)
