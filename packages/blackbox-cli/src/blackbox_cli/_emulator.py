"""``blackbox emulator``: run a local BlackBox-compatible server until interrupted.

Every ``Emulator`` keyword a command line can give is an option here, except
``media`` (a Python factory); what the emulator sees (a client's protocol
violation, a fault injected) is logged, and ``--verbose``/``--log-level``
choose how much of it reaches stderr (``log_level``, read by ``_main``).
"""

from __future__ import annotations

import argparse
import inspect
import logging
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Final, get_args

from blackbox_emulator import AgentScript, Emulator, Fault, ScriptError, serve
from blackbox_emulator.script import OfferKey, OfferStyle

from blackbox_cli._options import UsageError, file_path, nonblank, port, positive

__all__ = ["LOG_LEVELS", "add_emulator_options", "log_level", "run_emulator"]

#: The levels ``--log-level`` takes. WARNING, the default, shows every violation
#: by a client, every fault injected and every refusal, one line each.
LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR")

#: ``Emulator``'s defaults, which the limits' options share (and their help shows).
_DEFAULTS: Final = {
    name: parameter.default for name, parameter in inspect.signature(Emulator).parameters.items()
}
#: What a limit's option takes for "no limit".
_NO_LIMIT: Final = "none"


def add_emulator_options(parser: argparse.ArgumentParser) -> None:
    """The options of ``blackbox emulator``."""
    parser.add_argument(
        "--host",
        type=nonblank,
        default="127.0.0.1",
        help="address to listen on (default: 127.0.0.1)",
    )
    parser.add_argument(
        "--port",
        type=port,
        default=8765,
        help="port to listen on; 0 picks a free one (default: 8765)",
    )
    parser.add_argument(
        "--token", metavar="TOKEN", help="the only token accepted (default: a random one)"
    )
    parser.add_argument(
        "--script", metavar="FILE", type=file_path, help="the agent's script (TOML or JSON)"
    )
    parser.add_argument(
        "--fault",
        metavar="NAME",
        choices=[fault.value for fault in Fault],
        help="inject a fault into every conversation: " + ", ".join(fault.value for fault in Fault),
    )
    parser.add_argument(
        "--allowed-origin",
        metavar="ORIGIN",
        action="append",
        type=nonblank,
        dest="allowed_origins",
        help="serve only clients with this Origin header; repeat for more "
        "(default: any Origin, or none)",
    )
    parser.add_argument(
        "--record-dir",
        metavar="DIR",
        type=file_path,
        help="record what each voice caller says, one WAV file a call, into DIR (default: none)",
    )
    parser.add_argument(
        "--lenient",
        action="store_true",
        help="relax the live service's rules: a frame it closes 1007 for goes on to the "
        "protocol core instead (each rule relaxed is logged)",
    )
    parser.add_argument(
        "--no-tool-call-results",
        dest="tool_call_results",
        action="store_const",
        const=False,
        help="send no toolCallResult after a tool response (default: the script's, else send it)",
    )
    voice = parser.add_argument_group(
        "voice", "How voice calls are offered and voiced; the default is the script's [voice]."
    )
    voice.add_argument(
        "--offer-style",
        metavar="STYLE",
        choices=get_args(OfferStyle),
        help="the SDP offer's shape: sip (as the live service sends it) or browser "
        "(default: the script's, else sip)",
    )
    voice.add_argument(
        "--offer-key",
        metavar="KEY",
        choices=get_args(OfferKey),
        help="the key of sdpInvite.data that carries the offer: invite (live) or sdpOffer "
        "(documented) (default: the script's, else invite)",
    )
    voice.add_argument(
        "--clean-voice-close",
        action="store_true",
        help="end a voice call with a close frame (1000) after its result (default: as live, "
        "event closed, the result, then no close frame)",
    )
    voice.add_argument(
        "--echo-audio-after",
        metavar="S",
        type=_seconds_or_zero,
        help="make the agent an echo that plays back what it hears S seconds later "
        "(default: the script's, else no echo)",
    )
    logs = parser.add_argument_group(
        "logging",
        "What the emulator sees, on stderr. By default one line for every protocol "
        "violation by a client, every fault injected and every refusal.",
    ).add_mutually_exclusive_group()
    logs.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="say more: -v what each conversation does (INFO), -vv everything (DEBUG)",
    )
    logs.add_argument(
        "--log-level",
        metavar="LEVEL",
        type=str.upper,
        choices=LOG_LEVELS,
        help=f"the least severe level shown: {', '.join(LOG_LEVELS)} (default: WARNING)",
    )
    limits = parser.add_argument_group(
        "limits",
        "What any one client may hold of a shared emulator (docs/emulator.md, 'Running it as "
        f"a shared server'). '{_NO_LIMIT}' lifts a limit, where an option takes it.",
    )
    limits.add_argument(
        "--max-connections",
        metavar="N",
        type=_whole(1),
        default=_DEFAULTS["max_connections"],
        help=f"conversations at once, or {_NO_LIMIT}; a client past them gets HTTP 503"
        + _default("max_connections"),
    )
    limits.add_argument(
        "--handshake-timeout",
        metavar="S",
        type=_positive_or_none,
        default=_DEFAULTS["handshake_timeout"],
        help=f"seconds (or {_NO_LIMIT}) a connection has to complete the WebSocket handshake"
        + _default("handshake_timeout"),
    )
    limits.add_argument(
        "--initialize-timeout",
        metavar="S",
        type=positive,
        default=_DEFAULTS["initialize_timeout"],
        help="seconds a client has to send initialize" + _default("initialize_timeout"),
    )
    limits.add_argument(
        "--idle-timeout",
        metavar="S",
        type=_positive_or_none,
        default=_DEFAULTS["idle_timeout"],
        help=f"seconds (or {_NO_LIMIT}) a frame may wait for a client that reads nothing; "
        "then the connection is aborted" + _default("idle_timeout"),
    )
    limits.add_argument(
        "--max-frame-size",
        metavar="CHARS",
        type=_whole(1, no_limit=False),
        default=_DEFAULTS["max_frame_size"],
        help="the longest frame served, in characters; a longer one gets 'Too large message'"
        + _default("max_frame_size"),
    )
    limits.add_argument(
        "--max-frame-rate",
        metavar="N",
        type=_positive_or_none,
        default=_DEFAULTS["max_frame_rate"],
        help=f"frames a second (or {_NO_LIMIT}) read from each connection; faster ones wait "
        "unread" + _default("max_frame_rate"),
    )
    limits.add_argument(
        "--max-frame-burst",
        metavar="N",
        type=_whole(1, no_limit=False),
        default=_DEFAULTS["max_frame_burst"],
        help="frames a connection may send at once before the rate applies"
        + _default("max_frame_burst"),
    )
    limits.add_argument(
        "--max-records",
        metavar="N",
        type=_whole(0),
        default=_DEFAULTS["max_records"],
        help=f"conversation records kept in memory, the newest; 0 keeps none, {_NO_LIMIT} all"
        + _default("max_records"),
    )
    limits.add_argument(
        "--max-record-frames",
        metavar="N",
        type=_whole(1),
        default=_DEFAULTS["max_record_frames"],
        help=f"frames a record keeps, or {_NO_LIMIT}; later ones are only counted"
        + _default("max_record_frames"),
    )
    limits.add_argument(
        "--max-record-size",
        metavar="CHARS",
        type=_whole(1),
        default=_DEFAULTS["max_record_size"],
        help=f"characters a record's frames hold in all, or {_NO_LIMIT}; a frame that does not "
        "fit is only counted" + _default("max_record_size"),
    )


def log_level(args: argparse.Namespace) -> int:
    """The logging level the options ask for: ``--log-level``, else one per ``-v``."""
    if args.log_level is not None:
        level: int = logging.getLevelNamesMapping()[args.log_level]
        return level
    return {0: logging.WARNING, 1: logging.INFO}.get(args.verbose, logging.DEBUG)


def _seconds_or_zero(text: str) -> float:
    """An argparse type: a finite number of seconds, 0 or more."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be 0 or more seconds, not {text!r}")
    return value


def _record_dir(text: str | None) -> Path | None:
    """``--record-dir``, checked before anything listens: a writable directory."""
    if text is None:
        return None
    path = Path(text)
    if not path.is_dir():
        raise UsageError(f"--record-dir {text}: not a directory (create it first)")
    if not os.access(path, os.W_OK | os.X_OK):
        raise UsageError(f"--record-dir {text}: cannot write there")
    return path


def _default(option: str) -> str:
    value = _DEFAULTS[option]
    shown = _NO_LIMIT if value is None else f"{value:g}" if isinstance(value, float) else value
    return f" (default: {shown})"


def _whole(minimum: int, *, no_limit: bool = True) -> Callable[[str], int | None]:
    """An argparse type: a whole number from ``minimum`` up (or ``none``, if ``no_limit``)."""

    def parse(text: str) -> int | None:
        if no_limit and text.lower() == _NO_LIMIT:
            return None
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            alternative = f" or {_NO_LIMIT}" if no_limit else ""
            raise argparse.ArgumentTypeError(
                f"must be a whole number from {minimum} up{alternative}, not {text}"
            )
        return value

    return parse


def _positive_or_none(text: str) -> float | None:
    """An argparse type: a number above 0, or ``none``."""
    if text.lower() == _NO_LIMIT:
        return None
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a number above 0 or {_NO_LIMIT}, not {text}")
    return value


async def run_emulator(args: argparse.Namespace) -> int:
    """Run ``blackbox emulator`` until interrupted."""
    try:
        script = None if args.script is None else AgentScript.load(args.script)
    except ScriptError as exc:
        raise UsageError(f"cannot use the script {exc}") from None
    except OSError as exc:  # missing, a directory, no permission
        raise UsageError(f"cannot use the script {args.script}: {exc.strerror or exc}") from None
    try:
        emulator = Emulator(
            host=args.host,
            port=args.port,
            token=args.token,
            script=script,
            fault=None if args.fault is None else Fault(args.fault),
            allowed_origins=args.allowed_origins,
            offer_style=args.offer_style,
            offer_key=args.offer_key,
            echo_audio_after=args.echo_audio_after,
            record_dir=_record_dir(args.record_dir),
            max_connections=args.max_connections,
            handshake_timeout=args.handshake_timeout,
            initialize_timeout=args.initialize_timeout,
            idle_timeout=args.idle_timeout,
            max_frame_size=args.max_frame_size,
            max_frame_rate=args.max_frame_rate,
            max_frame_burst=args.max_frame_burst,
            max_records=args.max_records,
            max_record_frames=args.max_record_frames,
            max_record_size=args.max_record_size,
            lenient=args.lenient,
            tool_call_results=args.tool_call_results,
            clean_voice_close=args.clean_voice_close,
        )
    except ValueError as exc:  # an empty --token
        raise UsageError(str(exc)) from None
    given_token = args.token is not None

    def ready(running: Emulator) -> None:
        # The emulator's own token is a local test credential, not the user's:
        # a random one must be shown or nobody could call it.
        token = "the one given with --token" if given_token else running.token
        variable = "$BLACKBOX_TOKEN" if given_token else running.token
        sys.stdout.write(
            f"BlackBox emulator listening on {running.server}\n"
            f"token: {token}\n"
            f"call it: BLACKBOX_TOKEN={variable} blackbox chat --server {running.server}\n"
        )
        sys.stdout.flush()

    try:
        await serve(emulator, ready=ready)
    except BrokenPipeError:  # from ready(): whoever read stdout has gone (see main)
        raise
    except OSError as exc:  # the address is taken or not this machine's
        raise UsageError(
            f"cannot listen on {args.host} port {args.port}: {exc.strerror or exc} "
            "(--port 0 picks a free port)"
        ) from None
    return 0
