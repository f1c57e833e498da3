"""Bad paths and numbers fail when a part is made, before any file is created or replaced."""

from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path
from typing import Any

import pytest
from blackbox_media_file import (
    EnergyVad,
    FileError,
    FileSession,
    FileSource,
    StereoRecorder,
    TeeSource,
    TurnScript,
    WavRecorder,
    check_recording_paths,
)

from tests._files import unwritable_directory
from tests.blackbox_media_file._audio import tone, write_wav


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return write_wav(tmp_path / "clip.wav", tone(440.0, 0.5, 48000), 48000)


@pytest.fixture
def precious(tmp_path: Path) -> Path:
    """A file from before, that a mistake must not destroy."""
    path = tmp_path / "precious.wav"
    path.write_bytes(b"an earlier recording")
    return path


def state(directory: Path) -> dict[str, tuple[str, int]]:
    """Every file of ``directory``: content digest and modification time."""
    return {
        path.name: (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
        for path in sorted(directory.iterdir())
        if path.is_file() and not path.is_symlink()
    }


# check_recording_paths


def test_a_recording_over_a_clip_is_refused_however_it_is_written(
    tmp_path: Path, clip: Path
) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "link.wav").symlink_to(clip)
    os.link(clip, tmp_path / "hard.wav")

    with pytest.raises(FileError, match="is also a clip to play: recording there would"):
        check_recording_paths([clip], clips=[clip])
    for other in (
        f"{tmp_path}/./clip.wav",
        f"{tmp_path}/sub/../clip.wav",
        tmp_path / "link.wav",
        tmp_path / "hard.wav",
    ):
        with pytest.raises(FileError, match=f"is the same file as the clip {clip}") as raised:
            check_recording_paths([other], clips=[clip])
        assert raised.value.path == os.fspath(other)


def test_two_recordings_into_one_file_are_refused(tmp_path: Path) -> None:
    with pytest.raises(FileError, match="is given twice: each recording needs a file"):
        check_recording_paths([tmp_path / "a.wav", tmp_path / "a.wav"])
    with pytest.raises(FileError, match="is the same file as the recording"):
        check_recording_paths([tmp_path / "a.wav", f"{tmp_path}/./a.wav"])
    assert list(tmp_path.iterdir()) == []


def test_recordings_that_cannot_be_made_are_refused(tmp_path: Path, clip: Path) -> None:
    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)
    cases: list[tuple[str | Path, str]] = [
        ("", "an empty path"),
        (tmp_path / "missing" / "a.wav", "missing does not exist"),
        (clip / "a.wav", "Not a directory"),
        (tmp_path, "it is a directory"),
        (fifo, "it is not a regular file"),  # opening it would block
    ]
    for path, reason in cases:
        with pytest.raises(FileError, match=reason):
            check_recording_paths([path])


def test_a_recording_in_a_directory_not_writable_is_refused(tmp_path: Path) -> None:
    with unwritable_directory(tmp_path) as locked:
        with pytest.raises(FileError, match=f"cannot record here: {locked} is not writable"):
            check_recording_paths([locked / "a.wav"])
        assert not (locked / "a.wav").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write a file whatever its mode")
def test_a_recording_over_a_file_not_writable_is_refused(tmp_path: Path) -> None:
    (tmp_path / "read-only.wav").write_bytes(b"")
    (tmp_path / "read-only.wav").chmod(0o400)
    with pytest.raises(FileError, match="the file is not writable"):
        check_recording_paths([tmp_path / "read-only.wav"])


def test_replacing_an_earlier_recording_is_allowed(tmp_path: Path, precious: Path) -> None:
    check_recording_paths([precious, tmp_path / "new.wav"], clips=[tmp_path / "other.wav"])
    assert precious.read_bytes() == b"an earlier recording"


# FileSession: every argument checked before any file is touched.


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"agent_wait": -1}, ValueError, "agent_wait must be zero or more"),
        ({"agent_wait": math.nan}, ValueError, "agent_wait must be zero or more"),
        ({"max_wait": math.inf}, ValueError, "max_wait must be zero or more"),
        ({"silence_after_agent": -0.1}, ValueError, "silence_after_agent must be zero"),
        ({"silence_after_agent": "1"}, TypeError, "silence_after_agent must be a number"),
        ({"agent_wait": 5, "max_wait": 1}, ValueError, "max_wait"),
        ({"on_event": 5}, TypeError, "on_event must be callable"),
        ({"sample_rate": 44101}, ValueError, "sample_rate must be 8000 to 192000"),
        ({"sample_rate": 48000.0}, TypeError, "sample_rate must be a whole number"),
        ({"connect_timeout": -1}, ValueError, "connect_timeout must be positive"),
        ({"ice_server": ["stun:x"]}, TypeError, "unexpected keyword argument 'ice_server'"),
    ],
)
@pytest.mark.parametrize("turns", [False, True], ids=["one-clip", "turn-script"])
def test_a_wrong_option_fails_before_any_file_is_touched(
    tmp_path: Path,
    clip: Path,
    precious: Path,
    options: dict[str, Any],
    error: type[Exception],
    message: str,
    turns: bool,
) -> None:
    before = state(tmp_path)
    play: Any = [clip, clip] if turns else clip

    with pytest.raises(error, match=message):
        FileSession(play, record=precious, record_stereo=tmp_path / "new.wav", **options)

    assert state(tmp_path) == before


def test_a_recording_over_the_clip_is_refused_and_the_clip_kept(tmp_path: Path, clip: Path) -> None:
    before = state(tmp_path)

    with pytest.raises(FileError, match="recording there would overwrite it"):
        FileSession(clip, record=clip)
    with pytest.raises(FileError, match="recording there would overwrite it"):
        FileSession([clip], record_stereo=f"{tmp_path}/./clip.wav")

    assert state(tmp_path) == before


def test_one_file_for_both_recordings_is_refused(tmp_path: Path, precious: Path) -> None:
    before = state(tmp_path)

    with pytest.raises(FileError, match="each recording needs a file of its own"):
        FileSession(record=precious, record_stereo=precious)

    assert state(tmp_path) == before


def test_a_stereo_recording_that_cannot_be_made_leaves_the_other_file_alone(
    tmp_path: Path, clip: Path, precious: Path
) -> None:
    before = state(tmp_path)

    with pytest.raises(FileError, match="cannot record here"):
        FileSession(clip, record=precious, record_stereo=tmp_path / "no" / "call.wav")

    assert state(tmp_path) == before


def test_a_missing_clip_leaves_the_recordings_alone(tmp_path: Path, precious: Path) -> None:
    before = state(tmp_path)

    with pytest.raises(FileError, match="no such file"):
        FileSession(tmp_path / "missing.wav", record=precious)

    assert state(tmp_path) == before


# The parts' own numbers.


@pytest.mark.parametrize("rate", [0, -8000, 48000.0, True, "48000"])
def test_a_wrong_sample_rate_is_refused_by_every_part(
    tmp_path: Path, clip: Path, rate: Any
) -> None:
    error = ValueError if isinstance(rate, int) and not isinstance(rate, bool) else TypeError
    for make in (
        lambda: FileSource(clip, sample_rate=rate),
        lambda: TurnScript([clip], sample_rate=rate),
        lambda: WavRecorder(tmp_path / "a.wav", sample_rate=rate),
        lambda: StereoRecorder(tmp_path / "b.wav", sample_rate=rate),
        lambda: TeeSource(FileSource(clip), sample_rate=rate),
    ):
        with pytest.raises(error, match="sample_rate must be"):
            make()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["clip.wav"]


def test_one_path_is_not_a_turn_script(clip: Path) -> None:
    with pytest.raises(TypeError, match="for one clip, pass"):
        TurnScript(clip)  # type: ignore[arg-type]  # the mistake under test
    with pytest.raises(TypeError, match="for one clip, pass"):
        TurnScript(str(clip))


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"ratio": math.nan}, ValueError),
        ({"min_level": math.inf}, ValueError),
        ({"floor_window": 0}, ValueError),
        ({"ratio": "4"}, TypeError),
    ],
)
def test_a_vad_out_of_range_is_refused(options: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error, match=next(iter(options))):
        EnergyVad(**options)


def test_a_recorder_on_a_pipe_is_refused_instead_of_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)

    with pytest.raises(FileError, match="not a regular file"):
        WavRecorder(fifo)
    with pytest.raises(FileError, match="not a regular file"):
        StereoRecorder(fifo)
