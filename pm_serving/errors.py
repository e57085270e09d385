"""One mapping from errors to responses: a 4xx names the field and the problem; nothing leaks as a 500."""

from litestar import Request, Response
from litestar.exceptions import HTTPException, InternalServerException, ValidationException
from litestar.status_codes import (
    HTTP_400_BAD_REQUEST,
    HTTP_422_UNPROCESSABLE_ENTITY,
    HTTP_500_INTERNAL_SERVER_ERROR,
    HTTP_503_SERVICE_UNAVAILABLE,
)

#: The status recorded for a request whose client went away before its body was read.
CLIENT_CLOSED_REQUEST = 499
EMPTY_BODY = "invalid request body: it is empty; send a JSON object (the shapes are in /schema/openapi.json)"


class InputError(Exception):
    """A request that decodes but cannot be scored (unknown sensor, too few readings, NaN, …)."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"{field}: {problem}")
        self.field, self.problem = field, problem


class Unavailable(Exception):
    """What the request needs is not loaded (no champion yet, a stale watcher, no fleet snapshot)."""

    def __init__(self, message: str, detail: object = None):
        super().__init__(message)
        self.detail = detail


def _body(status: int, message: str, detail: object = None) -> Response:
    return Response({"status_code": status, "error": message, **({"detail": detail} if detail else {})}, status_code=status)


def handle(request: Request, exc: Exception) -> Response:
    if isinstance(exc, InputError):
        return _body(HTTP_422_UNPROCESSABLE_ENTITY, str(exc), {"field": exc.field, "problem": exc.problem})
    if isinstance(exc, Unavailable):
        return _body(HTTP_503_SERVICE_UNAVAILABLE, str(exc), exc.detail)
    if isinstance(exc, InternalServerException) and exc.detail == "client disconnected prematurely":
        # nobody receives this answer, and it is not the server's fault: not a 500 in the metrics (nginx's 499)
        return Response(None, status_code=CLIENT_CLOSED_REQUEST)
    if isinstance(exc, ValidationException) and any(isinstance(e, dict) and e.get("key") == "data" and e.get("source") == "body"
                                                    for e in exc.extra or []):
        return _body(HTTP_400_BAD_REQUEST, EMPTY_BODY)  # Litestar's own words for it: "Validation failed … 'data'"
    if isinstance(exc, HTTPException):  # validation (400), auth (401), not found (404), too large (413)
        return _body(exc.status_code, exc.detail, exc.extra)
    if isinstance(exc, RecursionError):  # a body nested deeper than any request type (decoding stops at the type)
        return _body(HTTP_400_BAD_REQUEST, "request body nested too deeply")
    request.logger.exception("unhandled error")
    return _body(HTTP_500_INTERNAL_SERVER_ERROR, "internal error")


EXCEPTION_HANDLERS = {Exception: handle}
