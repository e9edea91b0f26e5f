"""One exception tree for Farpoint; each error carries its HTTP status.

The server turns these into RFC 9457 problem details; the SDK turns problem details back
into these, so a caller catches the same class wherever the error was raised.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BadRequest",
    "Conflict",
    "FarpointError",
    "Forbidden",
    "GateFailed",
    "Gone",
    "NotFound",
    "PayloadTooLarge",
    "SignatureError",
    "Unauthorized",
    "ValidationFailed",
    "error_for_status",
]


class FarpointError(Exception):
    """Base of every error Farpoint raises on purpose."""

    status: int = 500
    code: str = "internal-error"
    title: str = "Internal error"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra

    def problem(self) -> dict[str, Any]:
        """The RFC 9457 problem document for this error."""
        body: dict[str, Any] = {
            "type": f"https://farpoint.dev/problems/{self.code}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        body.update(self.extra)
        return body


class BadRequest(FarpointError):
    status = 400
    code = "bad-request"
    title = "Bad request"


class Unauthorized(FarpointError):
    status = 401
    code = "unauthorized"
    title = "Not authenticated"


class Forbidden(FarpointError):
    status = 403
    code = "forbidden"
    title = "Not allowed"


class NotFound(FarpointError):
    status = 404
    code = "not-found"
    title = "Not found"


class Conflict(FarpointError):
    status = 409
    code = "conflict"
    title = "Conflict"


class Gone(FarpointError):
    """What was asked for existed and was removed on purpose (rows past their retention)."""

    status = 410
    code = "gone"
    title = "Gone"


class PayloadTooLarge(FarpointError):
    status = 413
    code = "payload-too-large"
    title = "Payload too large"


class ValidationFailed(FarpointError):
    status = 422
    code = "validation-failed"
    title = "Invalid input"


class SignatureError(FarpointError):
    """A signature, digest or key did not verify."""

    status = 401
    code = "signature-invalid"
    title = "Signature does not verify"


class GateFailed(FarpointError):
    """An evaluation gate failed (used by clients to exit non-zero)."""

    status = 422
    code = "gate-failed"
    title = "Gate failed"


_BY_STATUS: dict[int, type[FarpointError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    410: Gone,
    413: PayloadTooLarge,
    422: ValidationFailed,
}


def error_for_status(status: int, detail: str, **extra: Any) -> FarpointError:
    """Rebuild the error class a server answered with (used by clients)."""
    cls = _BY_STATUS.get(status)
    if cls is None:
        err = FarpointError(detail, **extra)
        err.status = status
        return err
    return cls(detail, **extra)
