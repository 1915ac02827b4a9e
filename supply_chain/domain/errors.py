"""The project's exception tree. Every layer raises these; the web layer maps each family to one status."""

from __future__ import annotations

from typing import Any


class LotlineError(Exception):
    """Root of every error Lotline raises on purpose."""

    status = 500
    code = "lotline_error"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if code is not None:
            self.code = code

    def to_dict(self) -> dict[str, str]:
        out = {"error": self.code, "message": self.message}
        if self.field:
            out["field"] = self.field
        return out


class InvalidInput(LotlineError):
    """Raised when input breaks a rule; names the field and the rule. Nothing is written."""

    status = 400
    code = "invalid_input"


class NotFound(LotlineError):
    """Raised when a lot, product, location, organisation or event does not exist."""

    status = 404
    code = "not_found"


class Forbidden(LotlineError):
    """Raised when the acting organisation's role or custody does not allow the action."""

    status = 403
    code = "forbidden"


class Conflict(LotlineError):
    """Raised when the action clashes with the current state (lot held, in transit, already exists, ...)."""

    status = 409
    code = "conflict"


class ChainUnavailable(LotlineError):
    """Raised when the chain node cannot be reached or does not answer in time."""

    status = 503
    code = "chain_unavailable"


class DatabaseUnavailable(LotlineError):
    """Raised when the database cannot be reached (stopped, restarting, network cut): nothing was written."""

    status = 503
    code = "database_unavailable"


def describe(value: Any, limit: int = 80) -> str:
    """Return a short ``repr`` of a refused value for an error message.

    Never raises: an integer of more than 4300 digits has no ``repr`` in Python 3.11+ (``ValueError``), and a
    message must not echo a megabyte of input back.
    """
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        return f"an integer of about {int(value.bit_length() * 0.30103)} digits"
    try:
        text = repr(value)
    except ValueError:  # pragma: no cover - the integer case is handled above
        return f"a {type(value).__name__}"
    return text if len(text) <= limit else text[: limit - 3] + "..."
