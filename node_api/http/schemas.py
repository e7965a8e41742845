"""Request and response pieces every route module shares: strict bodies, the problem
schema, identifiers, amounts and path parameters, pages, scheduled installments, the
documentation of a route's bodies and the business date a request defaults to."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import date
from typing import Annotated, Any, Final, Generic, TypeVar

from fastapi import Path
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints
from sqlalchemy.engine import Connection

from node_api.http.openapi import JsonObject
from node_api.kernel.money import Fen
from node_api.ledger.business_date import fetch_business_date, resolve_as_of
from node_api.lending.installment_store import ScheduledInstallment

AMOUNT_FEN_MAX: Final = 10**12
ID_MAX: Final = 2**62
IDENTIFIER_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
PRODUCT_CODE_PATTERN: Final = r"^[A-Z0-9][A-Z0-9_-]{0,31}$"

IdentifierStr = Annotated[str, StringConstraints(pattern=IDENTIFIER_PATTERN)]
"""An opaque id (customer, channel, merchant, partner ref): never personal data."""
ProductCodeStr = Annotated[str, StringConstraints(pattern=PRODUCT_CODE_PATTERN)]
CurrencyStr = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
AddressStr = Annotated[str, StringConstraints(pattern=r"^0x[0-9a-fA-F]{40}$")]
LimitFen = Annotated[Fen, Field(strict=True, ge=0, le=AMOUNT_FEN_MAX)]
AmountFen = Annotated[Fen, Field(strict=True, gt=0, le=AMOUNT_FEN_MAX)]

_PATH_ID_TEXT: Final = re.compile(r"[1-9][0-9]{0,18}")
"""A path id as text: ASCII digits, no sign, no leading zero, at most 19 of them."""


def parse_path_id(raw: str, maximum: int = ID_MAX) -> int | None:
    """The id a path segment names, or None. Only ASCII digits count: `str.isdigit()`
    is also true of other scripts' digits and of `²`, which `int()` then refuses (a
    500), and a long enough string of digits is beyond what `int()` converts."""
    if _PATH_ID_TEXT.fullmatch(raw) is None:
        return None
    value = int(raw)
    return value if value <= maximum else None


def _canonical_id(value: object) -> object:
    if isinstance(value, str) and _PATH_ID_TEXT.fullmatch(value) is None:
        raise ValueError("an id is 1 to 19 ASCII digits without sign, spaces or leading zero")
    return value


PathIdText = BeforeValidator(_canonical_id)
"""Put before `Path(...)` on every integer path parameter (pydantic alone would also take
`" 12"`, `"+12"` or `"1_2"`)."""

LineId = Annotated[int, PathIdText, Path(ge=1, le=ID_MAX, description="credit line id")]
ProductCodePath = Annotated[str, Path(pattern=PRODUCT_CODE_PATTERN)]


class StrictBody(BaseModel):
    """A request body that refuses unknown fields; a field's docstring is its description
    in the API documentation."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


class Problem(BaseModel):
    """RFC 9457 problem details, as every error of this API is returned."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    code: str
    field: str | None = None


PROBLEMS: dict[int | str, JsonObject] = {
    status: {
        "model": Problem,
        "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        },
    }
    for status in (400, 401, 403, 404, 409, 413, 422)
}
"""The error responses every route documents."""


def documented(status: int, response: Any, request: Any = None) -> JsonObject:
    """A route decorator's documentation: the problem responses, the example of its
    `status` body and, when given, the example of its request body."""
    documented: JsonObject = {
        "responses": {**PROBLEMS, status: {"content": {"application/json": {"example": response}}}}
    }
    if request is not None:
        documented["openapi_extra"] = {
            "requestBody": {"content": {"application/json": {"example": request}}}
        }
    return documented


def fetch_as_of(conn: Connection, requested: date | None = None) -> date:
    """The requested date, else the node's business date."""
    return resolve_as_of(requested, fetch_business_date(conn))


Model = TypeVar("Model", bound=BaseModel)
Item = TypeVar("Item")
Cursor = TypeVar("Cursor")


def from_view(model: type[Model], view: object) -> Model:
    """A response model from a domain view with the same field names (a dataclass or any
    object with those attributes; the view's other attributes are left out)."""
    return model.model_validate(view, from_attributes=True)


class PageOut(BaseModel, Generic[Item]):
    """A page of a list read in a fixed order. A page model adds the cursor of the next
    page (`next_after`, `next_before`: null on the last page, see `next_cursor`) and
    whatever else describes the whole list."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    items: list[Item]


def next_cursor(
    page: Sequence[Item], limit: int, cursor_of: Callable[[Item], Cursor]
) -> Cursor | None:
    """The cursor of the page after `page`: its last item's when the page is full, None
    after a shorter one (the last; after a full last page, the next comes back empty)."""
    return cursor_of(page[-1]) if page and len(page) == limit else None


# The domain's installment is the response's; the subclass keeps the name the plan's and
# the what-if quote's installments extend (fields in `node_api.lending.installment_store`).
class ScheduledInstallmentOut(ScheduledInstallment): ...
