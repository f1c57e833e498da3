"""A conversation's result as the command's outcome: a ``Failed`` result fails the command.

The service (and the emulator) end a conversation that went wrong on their
side with a ``conversationResult`` whose status is ``Failed``: the socket
closes normally, so nothing raised tells a script that the call did not work.
``check_result`` turns that result into an error of its own, which ``_main``
reports in one line with its own exit status.
"""

from __future__ import annotations

from typing import Final

from blackbox_protocol import ConversationResultData

__all__ = ["FAILED", "FailedResult", "check_result"]

#: The result status of a conversation that failed (PROTOCOL.md, ``conversationResult``).
FAILED: Final = "Failed"


class FailedResult(Exception):
    """The conversation ended with a ``Failed`` result; the message gives its ``errorMessage``.

    Args:
        result: the conversation's result.
    """

    def __init__(self, result: ConversationResultData) -> None:
        reason = result.error_message or "no errorMessage given"
        super().__init__(f"the conversation ended with a Failed result: {reason}")
        self.result = result


def check_result(result: ConversationResultData | None) -> None:
    """Raise ``FailedResult`` when ``result`` says the conversation failed.

    Raises:
        FailedResult: ``result.status`` is ``Failed``.
    """
    if result is not None and result.status == FAILED:
        raise FailedResult(result)
