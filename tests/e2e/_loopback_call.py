"""A voice call between ``blackbox call`` and ``blackbox emulator``, run inside ``unshare -n``.

``python -m tests.e2e._loopback_call DIR`` (as root in a new network
namespace, whose only interface is ``lo``): brings ``lo`` up, starts the
emulator recording the caller into ``DIR/emulator``, calls it with
``DIR/caller.wav`` as the caller, recording the agent into ``DIR/agent.wav``,
and prints what ``blackbox call`` printed. The test that runs it checks the
audio.
"""

from __future__ import annotations

import fcntl
import socket
import struct
import sys
from pathlib import Path

from tests.blackbox_cli._process import emulator_process, run_cli

#: ``ioctl`` requests and the flag that say "this interface is up" (linux/sockios.h, if.h).
_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1


def bring_loopback_up() -> None:
    """``ip link set lo up``, without iproute2: a new namespace's ``lo`` starts down."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        request = struct.pack("16sh", b"lo", 0)
        flags = struct.unpack("16sh", fcntl.ioctl(probe, _SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(probe, _SIOCSIFFLAGS, struct.pack("16sh", b"lo", flags | _IFF_UP))


def main(directory: Path) -> int:
    bring_loopback_up()
    (directory / "emulator").mkdir()
    token = "loopback-token"
    with emulator_process("--token", token, "--record-dir", str(directory / "emulator")) as (
        server,
        _,
    ):
        result = run_cli(
            "call",
            "--server",
            server,
            "--token",
            token,
            "--play",
            str(directory / "caller.wav"),
            "--record",
            str(directory / "agent.wav"),
            "--duration",
            "8",
            timeout=40,
        )
    print(result.stdout)
    print(result.stderr, file=sys.stderr)
    return result.status


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
