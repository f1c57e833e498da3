"""blackbox_emulator: a local BlackBox-compatible server for offline tests.

``Emulator`` serves the web-integration protocol on loopback with a scripted
agent (``AgentScript``) that also speaks on voice calls, through the
emulator's own WebRTC peer (``voice.VoicePeer``, imported with aiortc only
when a call starts; its tones are described in ``speech``), and optional
fault injection (``Fault``);
``EmulatorThread`` and ``run_in_thread`` run it outside asyncio; the pytest
plugin (``blackbox_emulator.pytest_plugin``) provides the fixtures
``blackbox_emulator`` and ``blackbox_emulator_factory``.
"""

from __future__ import annotations

from blackbox_emulator.agent import Action, AskTool, Finish, Say, ScriptedAgent
from blackbox_emulator.emulator import (
    INVALID_TOKEN,
    MISSING_TOKEN,
    ORIGIN_NOT_ALLOWED,
    WEBCALL_PATH,
    Emulator,
    serve,
)
from blackbox_emulator.faults import Fault
from blackbox_emulator.media import MediaFactory, MediaHook
from blackbox_emulator.records import ConversationRecord, Direction, FrameRecord
from blackbox_emulator.script import (
    AgentScript,
    OfferKey,
    OfferStyle,
    ScriptError,
    ToolSpec,
    Turn,
    VoiceOptions,
)
from blackbox_emulator.thread import (
    EmulatorFactory,
    EmulatorOptions,
    EmulatorThread,
    run_in_thread,
)

__all__ = [
    "INVALID_TOKEN",
    "MISSING_TOKEN",
    "ORIGIN_NOT_ALLOWED",
    "WEBCALL_PATH",
    "Action",
    "AgentScript",
    "AskTool",
    "ConversationRecord",
    "Direction",
    "Emulator",
    "EmulatorFactory",
    "EmulatorOptions",
    "EmulatorThread",
    "Fault",
    "Finish",
    "FrameRecord",
    "MediaFactory",
    "MediaHook",
    "OfferKey",
    "OfferStyle",
    "Say",
    "ScriptError",
    "ScriptedAgent",
    "ToolSpec",
    "Turn",
    "VoiceOptions",
    "run_in_thread",
    "serve",
]
