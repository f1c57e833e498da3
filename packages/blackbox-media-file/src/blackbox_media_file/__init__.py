"""blackbox_media_file: the headless voice backend: files in, recordings out.

``FileSession`` is an ``AudioSession`` for servers and CI: it plays a file
(any format PyAV decodes) or a turn script as the caller, at real-time pace,
and records the agent to WAV, or both sides to one stereo WAV. Its parts are
ordinary audio sources and sinks, usable with any session that takes them:
``FileSource``, ``TurnScript``, ``WavRecorder``, ``StereoRecorder``; and
``check_recording_paths`` tells, touching nothing, whether recordings can go
where they are asked to.
"""

from __future__ import annotations

from blackbox_media_file.errors import FileError
from blackbox_media_file.paths import check_recording_paths
from blackbox_media_file.recorder import WavRecorder
from blackbox_media_file.session import FileSession
from blackbox_media_file.source import FRAME_DURATION, FileSource
from blackbox_media_file.stereo import Channel, StereoRecorder, StereoSide
from blackbox_media_file.tee import FanOutSink, TeeSource
from blackbox_media_file.turns import (
    AgentStarted,
    AgentStopped,
    ClipFinished,
    ClipStarted,
    StartReason,
    TurnEvent,
    TurnScript,
)
from blackbox_media_file.vad import EnergyVad

__all__ = [
    "FRAME_DURATION",
    "AgentStarted",
    "AgentStopped",
    "Channel",
    "ClipFinished",
    "ClipStarted",
    "EnergyVad",
    "FanOutSink",
    "FileError",
    "FileSession",
    "FileSource",
    "StartReason",
    "StereoRecorder",
    "StereoSide",
    "TeeSource",
    "TurnEvent",
    "TurnScript",
    "WavRecorder",
    "check_recording_paths",
]
