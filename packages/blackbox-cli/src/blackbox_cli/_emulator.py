"""``blackbox emulator``: run a local BlackBox-compatible server until interrupted."""

from __future__ import annotations

import argparse
import sys

from blackbox_emulator import AgentScript, Emulator, Fault, ScriptError, serve

from blackbox_cli._options import UsageError, file_path, nonblank, port

__all__ = ["add_emulator_options", "run_emulator"]


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
