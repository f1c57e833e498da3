"""A voice call with a file as the caller: the agent is cut off mid-greeting, the caller muted.

    BLACKBOX_TOKEN=... python examples/voice_interrupt.py question.wav call.wav

The file backend plays ``question.wav`` as the caller from the moment the
audio flows, and records both sides to ``call.wav`` (left: the caller, right:
the agent). The caller is muted at first (the agent hears silence in its
place). If the agent is still greeting after ``patience`` seconds, the caller
barges in: ``call.interrupt()`` stops playing the agent's audio (what is
queued is dropped, and the rest of that utterance is silenced: the recording
shows the cut), and ``call.unmute()`` lets the clip be heard.
"""

from __future__ import annotations

import os
import sys

import anyio
import blackbox_protocol as bb
from blackbox_media_file import FileSession


async def barge_in(
    token: str, server: str, clip: str, recording: str, *, patience: float = 2.0
) -> str:
    """Call the agent with ``clip`` as the caller; return what became of its greeting."""
    session = FileSession(clip, record_stereo=recording)
    # In a voice call the text comes as the agent speaks it: a longer pause keeps a reply whole.
    async with bb.connect(
        token, server=server, call_type="webCall", media=session, reply_pause=2.0
    ) as call:
        call.mute()  # the clip plays at once: until we barge in, the agent hears silence
        try:
            greeting = await call.wait_for_reply(timeout=patience)
        except bb.ReplyTimeout:  # still talking (or not started): barge in
            dropped = call.interrupt()
            outcome = f"cut off ({dropped:.1f} s of its audio dropped)"
        else:
            outcome = f"heard in full: {greeting.text}"
        call.unmute()  # now the agent hears the clip
        await anyio.sleep(patience)  # let it be heard; leaving the block hangs up
    return outcome


if __name__ == "__main__":
    token, server = (
        os.environ["BLACKBOX_TOKEN"],
        os.environ.get("BLACKBOX_SERVER", bb.DEFAULT_SERVER),
    )
    print(anyio.run(barge_in, token, server, *sys.argv[1:3]))
