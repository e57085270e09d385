"""Request bodies decoded in one typed msgspec pass, large ones off the event loop and in pieces.

Litestar's default path decodes a JSON body into Python objects and then converts them: two passes,
and the untyped one recurses into any nesting it is sent (a deep array ended in a `RecursionError`).
`TypedBody` decodes straight into the handler's Struct, so nesting deeper than the type fails at
once. A handler that takes `DTOData[T]` gets the undecoded body instead (`LazyBody`) and decodes it
in a worker thread with `decode_batch`: first only the outline (one span per machine), then machine
by machine, so the event loop gets its turns even while a body of many megabytes is decoded.
The OpenAPI schema is the Struct's, as with any `MsgspecDTO`.
"""

import re
from typing import Annotated, Any, Generic, TypeVar

import msgspec
from litestar.dto import DTOConfig, DTOData, MsgspecDTO
from litestar.exceptions import ValidationException

from pm_serving.errors import EMPTY_BODY, InputError

T = TypeVar("T")


def decode(raw: bytes, model: type[T], at: str = "") -> T:
    """`raw` as a `model`, or a 400 that says what and where (`Expected float | null, got str - at $.readings[3]...`)."""
    if isinstance(raw, bytes) and not raw.strip():  # (a batch's machines come as `msgspec.Raw` spans, never empty)
        raise ValidationException(EMPTY_BODY)
    try:
        return msgspec.json.decode(raw, type=model)
    except (msgspec.ValidationError, msgspec.DecodeError) as error:
        raise ValidationException(f"invalid request body: {_not_json_number(raw, str(error)) or str(error).replace('`$', f'`${at}')}") from None


def _not_json_number(raw: bytes, error: str) -> str | None:
    """NaN and Infinity are Python's, not JSON's: name the field they were sent for, not a byte position."""
    found = re.search(r"invalid character \(byte (\d+)\)", error)
    if not found:
        return None
    at, raw = int(found.group(1)), bytes(raw)
    at -= raw[at - 1:at] == b"-"  # msgspec points past the sign of -Infinity
    literal = re.match(rb"-?(NaN|Infinity|nan|inf)", raw[at:at + 9])
    if not literal:
        return None
    key = re.findall(rb'"([^"\\]{1,100})"\s*:\s*\[?\s*$', raw[max(0, at - 200):at])
    where = f" for `{key[-1].decode(errors='replace')}`" if key else ""
    return (f"{literal.group(0).decode()}{where} (byte {at}) is not a JSON number: send null for a missing value; "
            "an infinite reading is refused anyway")


class _Outline(msgspec.Struct, forbid_unknown_fields=True):
    machines: Annotated[list[msgspec.Raw], msgspec.Meta(min_length=1)]


def decode_batch(raw: bytes, batch: type[T], machine: type, max_machines: int) -> T:
    """A `{"machines": [...]}` body: its outline first (a batch of too many machines is refused before any is
    decoded), then each machine (between which other threads run)."""
    outline = decode(raw, _Outline)
    if len(outline.machines) > max_machines:
        raise InputError("body.machines", f"at most {max_machines} machines per batch, got {len(outline.machines)}")
    return batch(machines=[decode(m, machine, at=f".machines[{i}]") for i, m in enumerate(outline.machines)])


class LazyBody(DTOData[T], Generic[T]):
    """A body the handler decodes itself (`raw`), when and where it chooses."""

    __slots__ = ("_model", "raw")

    def __init__(self, raw: bytes, model: type[T]) -> None:
        self.raw, self._model = raw, model

    def create_instance(self, **kwargs: Any) -> T:
        return decode(self.raw, self._model)


class TypedBody(MsgspecDTO[T], Generic[T]):
    config = DTOConfig(max_nested_depth=4)  # every level of the request Structs in the OpenAPI schema

    def decode_bytes(self, value: bytes) -> Any:
        backend = self._dto_backends[self.asgi_connection.route_handler.handler_id]["data_backend"]
        if backend.dto_data_type is not None:
            return LazyBody(value, self.model_type)
        return decode(value, self.model_type)
