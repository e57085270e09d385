"""One mapping from errors to responses: a 4xx names the field and the problem; nothing leaks as a 500."""

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import (
    HTTP_422_UNPROCESSABLE_ENTITY,
    HTTP_500_INTERNAL_SERVER_ERROR,
    HTTP_503_SERVICE_UNAVAILABLE,
)


class InputError(Exception):
    """A request that decodes but cannot be scored (unknown sensor, too few readings, NaN, …)."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"{field}: {problem}")
        self.field, self.problem = field, problem


class NoModelError(Exception):
    """No champion is loaded yet."""


def _body(status: int, message: str, detail: object = None) -> Response:
    return Response({"status_code": status, "error": message, **({"detail": detail} if detail else {})}, status_code=status)


def handle(request: Request, exc: Exception) -> Response:
    if isinstance(exc, InputError):
        return _body(HTTP_422_UNPROCESSABLE_ENTITY, str(exc), {"field": exc.field, "problem": exc.problem})
    if isinstance(exc, NoModelError):
        return _body(HTTP_503_SERVICE_UNAVAILABLE, str(exc))
    if isinstance(exc, ValidationException):
        return _body(exc.status_code, exc.detail, exc.extra)
    if isinstance(exc, HTTPException):
        return _body(exc.status_code, exc.detail, exc.extra)
    request.logger.exception("unhandled error")
    return _body(HTTP_500_INTERNAL_SERVER_ERROR, "internal error")


EXCEPTION_HANDLERS = {Exception: handle}
