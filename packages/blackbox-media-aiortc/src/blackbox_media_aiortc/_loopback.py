"""Voice on a machine whose only network interface is loopback: the one seam on aioice.

aioice (aiortc's ICE) gathers a host candidate on every address but
``127.0.0.1`` and ``::1``. On a machine with no other interface (a container
or a CI job with only ``lo``, a network namespace) it gathers nothing, and no
call can connect, though both ends are on the same loopback. So, when it
finds no address at all, the gathering is given ``127.0.0.1``: a candidate
every peer on this machine reaches. Machines with another address are left
as they are (aioice's choice: loopback is no use to a remote peer).

The seam is ``aioice.ice.get_host_addresses``, tested with aioice 0.13.0
(the version the packages pin, ``aioice>=0.13,<0.14``). The emulator and the
aiortc backend each hold this module, the same text: neither depends on the
other (DESIGN.md), and a test keeps the two copies identical.
"""

from __future__ import annotations

from typing import Final

__all__ = ["LOOPBACK", "gather_on_loopback_when_alone"]

#: The address given to the gathering when the machine has no other.
LOOPBACK: Final = "127.0.0.1"


def gather_on_loopback_when_alone() -> None:
    """Make aioice gather on ``LOOPBACK`` where it would find no address. Idempotent."""
    import aioice.ice as ice

    if getattr(ice.get_host_addresses, "_blackbox_loopback", False):
        return
    original = ice.get_host_addresses

    def host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        found = original(use_ipv4, use_ipv6)
        return found or ([LOOPBACK] if use_ipv4 else [])

    host_addresses._blackbox_loopback = True  # type: ignore[attr-defined]
    ice.get_host_addresses = host_addresses
