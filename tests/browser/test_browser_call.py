"""A real browser in a voice call with the emulator, following the documented browser flow.

Headless Chromium loads ``page/call.js`` (a minimal web client: WebSocket,
``initialize`` webCall, ``event connection``, ``sdpInvite`` answered by an
``RTCPeerConnection`` with the microphone, ``sdpAnswer`` once ICE gathering is
complete) and calls the emulator. Proved, for each shape of the emulator's offer:

- the browser's peer connection reaches ``connected`` with the emulator's aiortc peer;
- the browser hears the agent: its utterances' tones (700, 1100, 1300 Hz), in order,
  through WebAudio, and receives the transcripts of the same utterances;
- the emulator hears the browser: its recording of the caller holds the tone of
  the WAV that Chromium's fake microphone plays (440 Hz);
- the socket and the records: the browser's ``Origin`` passes ``allowed_origins``,
  the frames in are ``initialize``, ``sdpAnswer``, ``terminate``.
"""

from __future__ import annotations

import wave
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from blackbox_emulator import AgentScript, Direction, OfferKey, OfferStyle, run_in_thread
from blackbox_emulator.speech import agent_tone, dominant_frequencies

from tests._system import CHROMEDRIVER, CHROMIUM, needs
from tests.browser._chromium import MIC_HZ, CallPage, PageServer, PageState

pytestmark = needs(CHROMIUM, CHROMEDRIVER)

#: The default script's greeting: three utterances ("Hello! ", ...), so three tones.
GREETING = AgentScript.default().greeting
#: How far a measured frequency may be from the tone. The page's analyser has
#: bins of 10.8 Hz (44.1 kHz) or 11.7 Hz (48 kHz) and reports a bin's centre.
TOLERANCE_HZ = 15.0
#: RMS (full scale 1.0) under which the page's sample is silence.
LOUD = 0.02
#: Bounds of each step, in seconds.
CONNECT_TIMEOUT = 15.0
HEAR_TIMEOUT = 15.0
CLOSE_TIMEOUT = 10.0
#: The caller's audio the emulator must receive before the test hangs up:
#: 100 RTP packets of 20 ms, 2 s.
CALLER_PACKETS = 100


def _near(frequency: float, target: float) -> bool:
    return abs(frequency - target) <= TOLERANCE_HZ


def _first_heard(state: PageState, frequency: float) -> int | None:
    """When (ms since the page started) the page first measured ``frequency`` loud enough."""
    for t, rms, hz in state["remote"]["samples"]:
        if rms >= LOUD and _near(hz, frequency):
            return int(t)
    return None


def _heard_the_greeting(state: PageState) -> bool:
    said = [t["text"] for t in state["transcripts"] if t["source"] == "assistant"]
    heard = [_first_heard(state, agent_tone(n)) for n in range(len(GREETING))]
    return said[: len(GREETING)] == list(GREETING) and None not in heard


def _read_wav(path: Path) -> tuple[npt.NDArray[np.int16], int]:
    with wave.open(str(path), "rb") as wav:
        assert wav.getsampwidth() == 2, "the recording is 16-bit PCM"
        channels, rate = wav.getnchannels(), wav.getframerate()
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    return pcm.reshape(-1, channels)[:, 0], rate


def _share_near(frequencies: Sequence[float], target: float) -> float:
    return sum(_near(f, target) for f in frequencies) / len(frequencies) if frequencies else 0.0


@pytest.mark.parametrize(
    ("offer_style", "offer_key"),
    [("sip", "invite"), ("sip", "sdpOffer"), ("browser", "invite"), ("browser", "sdpOffer")],
)
def test_a_browser_calls_the_emulator(
    browser: CallPage,
    page_server: PageServer,
    tmp_path: Path,
    offer_style: OfferStyle,
    offer_key: OfferKey,
) -> None:
    with run_in_thread(
        offer_style=offer_style,
        offer_key=offer_key,
        record_dir=tmp_path,
        allowed_origins=[page_server.origin],
    ) as emu:
        browser.open(emu.server, emu.token)
        connected = browser.wait_for(
            "peer connection", lambda s: s["connectionState"] == "connected", CONNECT_TIMEOUT
        )
        heard = browser.wait_for("the agent's greeting", _heard_the_greeting, HEAR_TIMEOUT)
        talked = browser.wait_for(
            f"{CALLER_PACKETS} RTP packets sent",
            lambda s: s["stats"] is not None and s["stats"]["packetsSent"] >= CALLER_PACKETS,
            HEAR_TIMEOUT,
        )
        browser.hang_up()
        ended = browser.wait_for("the close", lambda s: s["close"] is not None, CLOSE_TIMEOUT)
        emu.wait_until_idle(CLOSE_TIMEOUT)
        (record,) = emu.conversations

    # The signalling, as the page saw it.
    assert ended["offerKey"] == offer_key
    assert ended["events"][:1] == ["connection"]
    assert ended["result"] is not None
    assert ended["result"]["status"] == "Completed"
    assert ended["close"] is not None
    assert ended["close"]["code"] in (1000, 1006)
    assert not ended["iceGatheringCapped"], "ICE gathering completed, uncapped"
    offer, answer = ended["offerSdp"], ended["answerSdp"]
    assert offer is not None
    assert answer is not None
    # RFC 3264: the answer keeps the offer's transport profile (RTP/SAVP for the SIP shape).
    profile = offer.split("m=audio ", 1)[1].split()[1]
    assert answer.split("m=audio ", 1)[1].split()[1] == profile
    assert profile == ("RTP/SAVP" if offer_style == "sip" else "UDP/TLS/RTP/SAVPF")
    # The codec: G.711 for the SIP shape (all it offers), Opus for aiortc's own offer.
    stats = talked["stats"]
    assert stats is not None
    g711 = ("audio/PCMU/8000", "audio/PCMA/8000")
    assert stats["codec"] in (g711 if offer_style == "sip" else ("audio/opus/48000",))

    # The browser heard the agent: each utterance's tone, in order, and its transcript.
    first = (_first_heard(heard, agent_tone(n)) for n in range(len(GREETING)))
    times = [t for t in first if t is not None]
    assert len(times) == len(GREETING)
    assert times == sorted(times), f"the tones came in the order spoken: {times}"
    # Each text chunk is sent as the agent starts to say it: the ear lags the text
    # by the network, the jitter buffer and the analyser's window.
    texts = [t["t"] for t in heard["transcripts"] if t["source"] == "assistant"][: len(GREETING)]
    lags = [tone - text for tone, text in zip(times, texts, strict=True)]
    assert all(-100 <= lag <= 2000 for lag in lags), f"ms from text to tone: {lags}"

    # Its own microphone carried our tone (after echo cancellation, noise suppression, AGC).
    local = [hz for _, rms, hz in heard["local"]["samples"] if rms >= 0.005]
    mic_levels = [rms for _, rms, _ in heard["local"]["samples"] if rms >= 0.005]
    assert _share_near(local, MIC_HZ) > 0.9

    # The emulator heard the browser: the caller's recording holds the microphone's tone.
    assert record.audio_path is not None
    samples, rate = _read_wav(record.audio_path)
    caller = dominant_frequencies(samples, rate, min_level=0.005)
    assert len(caller) >= 10, f"{len(caller)} loud windows in {len(samples) / rate:.1f} s"
    assert _share_near(caller, MIC_HZ) > 0.8, caller

    # The record: the browser's Origin passed allowed_origins; the frames in.
    assert record.origin == page_server.origin
    assert record.call_type == "webCall"
    assert record.types(Direction.IN) == ["initialize", "sdpAnswer", "terminate"]

    times_ms = connected["times"]
    print(  # the figures, shown with pytest -s
        f"\n[{offer_style}/{offer_key}] codec {stats['codec']}; "
        f"ms since page start: socket {times_ms.get('socketOpen')}, "
        f"connection event {times_ms.get('connection')}, offer {times_ms.get('offer')}, "
        f"answer sent {times_ms.get('answerSent')}, "
        f"ICE connected {times_ms.get('connection-connected')}, "
        f"first audio {heard['times'].get('firstAudio')}; "
        f"agent tones first heard at {times} ms, {lags} ms after their text; "
        f"remote max RMS {heard['remote']['maxRms']:.3f}; "
        f"mic RMS first/last {mic_levels[0]:.3f}/{mic_levels[-1]:.3f} "
        f"at {float(np.median(local)):.0f} Hz; "
        f"recording {len(samples) / rate:.1f} s at {rate} Hz, "
        f"median caller frequency {float(np.median(caller)):.1f} Hz"
    )
