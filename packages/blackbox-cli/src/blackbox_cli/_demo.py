"""``blackbox demo``: the whole stack offline, in one process, with no arguments.

It starts the emulator in-process on a free loopback port and places a voice
call to its scripted agent with the file backend: real signaling over a real
WebSocket, real WebRTC audio both ways. The caller says a clip shipped with
this package; the transcript and the result are printed, and the agent's
side of the call is recorded to a WAV file.
"""

from __future__ import annotations

import argparse
import sys
from importlib.resources import as_file, files

from blackbox_emulator import Emulator

from blackbox_cli._call import TurnsAnswered, place_call
from blackbox_cli._options import UsageError, file_path
from blackbox_cli._outcome import check_result
from blackbox_cli._output import HumanPrinter

__all__ = ["add_demo_options", "run_demo"]

#: The caller's clip: a synthesized voice asking for a haircut.
CALLER_CLIP = "clips/caller.wav"


def add_demo_options(parser: argparse.ArgumentParser) -> None:
    """The options of ``blackbox demo``."""
    parser.add_argument(
        "--record",
        metavar="FILE",
        type=file_path,
        default="blackbox-demo.wav",
        help="where to record the call, both sides in stereo (default: blackbox-demo.wav)",
    )


async def run_demo(args: argparse.Namespace) -> int:
    """Run ``blackbox demo``."""
    from blackbox_media_file import FileError, FileSession, check_recording_paths

    try:  # before the emulator starts: a recording that cannot be made is a usage error
        check_recording_paths([args.record])
    except FileError as exc:
        raise UsageError(str(exc)) from None

    # The emulator's agent does not answer audio: a short wait after the clip will do.
    turns = TurnsAnswered(1, reply_wait=2.0)
    with as_file(files("blackbox_cli").joinpath(CALLER_CLIP)) as clip:
        async with Emulator(port=0) as emulator:
            sys.stderr.write(f"[emulator listening on {emulator.server}]\n")
            media = FileSession([clip], record_stereo=args.record, on_event=turns.saw)
            result = await place_call(
                emulator.token,
                server=emulator.server,
                media=media,
                printer=HumanPrinter(show_user=True),
                until=turns.wait,
                duration=60.0,
            )
    sys.stdout.write(f"recording (left: caller, right: agent): {args.record}\n")
    check_result(result)
    return 0
