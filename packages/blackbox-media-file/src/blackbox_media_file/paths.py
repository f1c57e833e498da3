"""Checking where recordings go before any file is touched.

A recording replaces its file. So a recording over a clip being played, or two
recordings into one file, would destroy audio; and a recording that cannot be
created must be known before another one has replaced its file. Paths are
compared as files, not as strings: ``a.wav``, ``./a.wav``, a symbolic link to
it and a hard link are the same file.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence

from blackbox_media_file.errors import FileError

__all__ = ["check_recording_paths"]

_StrPath = str | os.PathLike[str]


def check_recording_paths(
    recordings: Sequence[_StrPath], *, clips: Sequence[_StrPath] = ()
) -> None:
    """Check that each recording can be created and would overwrite nothing it must not.

    Nothing is created, opened or changed: a call that fails here has touched
    no file. Replacing an existing file that is none of ``clips`` is allowed
    (a recording replaces its file).

    Args:
        recordings: the files to record to.
        clips: the files to be played, which no recording may overwrite.

    Raises:
        FileError: a recording is one of the clips, or the same file as another
            recording, or cannot be created: an empty path, a directory that
            does not exist or is not writable, a path that is a directory or
            not a regular file.
    """
    for index, recording in enumerate(recordings):
        _check_creatable(os.fspath(recording))
        for clip in clips:
            if _same_file(recording, clip):
                what = _spelled(recording, clip, "is also a clip to play", "the clip")
                raise FileError(os.fspath(recording), f"{what}: recording there would overwrite it")
        for earlier in recordings[:index]:
            if _same_file(recording, earlier):
                what = _spelled(recording, earlier, "is given twice", "the recording")
                raise FileError(
                    os.fspath(recording), f"{what}: each recording needs a file of its own"
                )


def _spelled(path: _StrPath, other: _StrPath, alike: str, kind: str) -> str:
    """``alike`` when the two are written alike, else which file ``other`` is."""
    if os.fspath(path) == os.fspath(other):
        return alike
    return f"is the same file as {kind} {os.fspath(other)}"


def _same_file(first: _StrPath, second: _StrPath) -> bool:
    if os.path.realpath(first) == os.path.realpath(second):
        return True
    try:
        return os.path.samefile(first, second)  # hard links, case-insensitive names
    except OSError:  # one of them does not exist (yet): then they are not one file
        return False


def _check_creatable(path: str) -> None:
    if not path:
        raise FileError(path, "an empty path names no file to record to")
    directory = os.path.dirname(path) or os.curdir
    try:
        status = os.stat(path)
    except FileNotFoundError:
        if not os.path.isdir(directory):
            why = "is not a directory" if os.path.exists(directory) else "does not exist"
            raise FileError(path, f"cannot record here: {directory} {why}") from None
        if not os.access(directory, os.W_OK | os.X_OK):
            raise FileError(path, f"cannot record here: {directory} is not writable") from None
        return
    except OSError as error:  # a parent that is a file, a loop of links, no permission...
        raise FileError(path, f"cannot record here: {error.strerror or error}") from None
    if stat.S_ISDIR(status.st_mode):
        raise FileError(path, "cannot record here: it is a directory")
    if not stat.S_ISREG(status.st_mode):
        # A pipe would block the recorder, a device cannot hold a WAV's header.
        raise FileError(path, "cannot record here: it is not a regular file")
    if not os.access(path, os.W_OK):
        raise FileError(path, "cannot record here: the file is not writable")
