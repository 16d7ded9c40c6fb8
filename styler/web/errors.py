"""The one exception a request handler raises for anything the client got wrong, with the HTTP status to answer.

Why one class: the HTTP contract is "every client mistake is a 4xx JSON ``{"error": "..."}``", so handlers raise
:class:`ClientError` with a status and a sentence, and a single exception handler in :mod:`styler.web.app` writes
the response. Library errors (:class:`styler.errors.StylerError`) are turned into it where they arise, because only
the handler knows whether a bad value is the client's (422) or the server's.
"""

from __future__ import annotations

__all__ = ["ClientError"]


class ClientError(Exception):
    """A request the server refuses: ``status`` (4xx, or 503 when busy) and a message for the client."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
