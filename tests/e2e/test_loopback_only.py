"""Voice on a machine whose only interface is ``lo``: ``blackbox call`` and ``blackbox emulator``.

The call runs in a network namespace of its own (``unshare -n``: only ``lo``,
brought up), so aioice finds no address but loopback, which it skips; the
packages' seam (``_loopback.py``) gives it ``127.0.0.1``. Both sides' audio is
checked by content. Where new namespaces are not permitted (no root, no
``unshare``), the test skips and says why.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from blackbox_emulator.speech import AGENT_TONES_HZ

from tests.blackbox_media_file._audio import tone, write_wav
from tests.e2e.test_voice import has_tone

ROOT = Path(__file__).resolve().parents[2]
OUR_TONE_HZ = 440.0


def _namespaces() -> str | None:
    """Why new network namespaces cannot be made here, or ``None`` when they can."""
    if shutil.which("unshare") is None:
        return "needs unshare (util-linux)"
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"cannot make a network namespace here: {probe.stderr.strip() or probe.returncode}"
    return None


#: Why the test cannot run here, if it cannot.
CANNOT = _namespaces()


@pytest.mark.skipif(CANNOT is not None, reason=str(CANNOT))
def test_a_voice_call_connects_on_a_loopback_only_machine(tmp_path: Path) -> None:
    write_wav(tmp_path / "caller.wav", tone(OUR_TONE_HZ, 3.0, 16000), 16000)
    run = subprocess.run(
        ["unshare", "-n", sys.executable, "-m", "tests.e2e._loopback_call", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
    )

    assert run.returncode == 0, run.stderr
    assert "conversation ended: Completed" in run.stdout + run.stderr
    # The agent's greeting tones reached the caller ...
    for frequency in AGENT_TONES_HZ[:3]:
        assert has_tone(tmp_path / "agent.wav", frequency), f"{frequency} Hz not heard"
    # ... and the caller's tone reached the emulator.
    (heard,) = (tmp_path / "emulator").glob("*.wav")
    assert has_tone(heard, OUR_TONE_HZ, windows=10)


def test_the_emulator_and_the_backend_hold_the_same_seam() -> None:
    copies = [
        ROOT / "packages" / package / "src" / module / "_loopback.py"
        for package, module in (
            ("blackbox-emulator", "blackbox_emulator"),
            ("blackbox-media-aiortc", "blackbox_media_aiortc"),
        )
    ]
    emulator, backend = (path.read_text() for path in copies)
    assert emulator == backend
