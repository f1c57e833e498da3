"""``blackbox devices``: the audio inputs and outputs ``blackbox call`` can use."""

from __future__ import annotations

import argparse
import sys

from blackbox_cli._options import UsageError

__all__ = ["run_devices"]


async def run_devices(args: argparse.Namespace) -> int:
    """List the audio devices, or say clearly why there are none."""
    from blackbox_media_aiortc import DeviceError
    from blackbox_media_aiortc.devices import list_devices

    try:
        devices = list_devices()
    except DeviceError as exc:
        raise UsageError(str(exc)) from None
    if not devices:
        sys.stdout.write("no audio devices found\n")
        return 0
    for device in devices:
        roles = [
            role + (" (default)" if default else "")
            for role, present, default in (
                ("input", device.is_input, device.default_input),
                ("output", device.is_output, device.default_output),
            )
            if present
        ]
        sys.stdout.write(
            f"{device.index:3d}  {device.name}  [{device.host_api}: {', '.join(roles)}]\n"
        )
    return 0
