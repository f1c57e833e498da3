"""Keeping tokens out of logs: the token rides in the URL's query string.

websockets logs each request line at DEBUG (``< GET /api/v1/ws/webCall?token=...``),
so the emulator hands it a logger whose filter rewrites every record with the
``token`` (and ``authorization``) query values masked, whoever's token it is:
a wrong token a client presented is a credential too.
"""

from __future__ import annotations

import logging
import re
from typing import Final

__all__ = ["REDACTED", "redact", "websockets_logger"]

#: What a secret query value is replaced with.
REDACTED: Final = "***"
_SECRET_QUERY: Final = re.compile(r"(?i)\b(token|authorization)=[^&#\s\"']*")


def redact(text: str) -> str:
    """``text`` with the values of ``token=`` and ``authorization=`` masked."""
    return _SECRET_QUERY.sub(lambda match: f"{match.group(1)}={REDACTED}", text)


class _RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def websockets_logger() -> logging.Logger:
    """The logger the emulator gives websockets: ``blackbox_emulator.websockets``, redacting."""
    logger = logging.getLogger("blackbox_emulator.websockets")
    if not any(isinstance(f, _RedactingFilter) for f in logger.filters):
        logger.addFilter(_RedactingFilter())
    return logger
