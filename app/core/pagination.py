"""Keyset pagination, whitelisted sorting and opaque signed cursors, shared by every list.

A page is `ORDER BY <sort fields>, id LIMIT limit + 1`, and the next page starts strictly
after the last row's values: no OFFSET, so page 1,000 costs what page 1 costs, and rows
inserted while a client walks the pages never make it see a row twice or miss one.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ColumnElement, Select, and_, func, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.elements import KeyedColumnElement

from app.core.errors import ValidationFailed

T = TypeVar("T")
# The MAC makes a truncated, edited or foreign cursor a clean 422. It is not a secret:
# a forged cursor could only choose where a page starts, which filters allow anyway.
_CURSOR_KEY = b"process-atlas/cursor/v1"
DEFAULT_LIMIT = 50
MAX_LIMIT = 200


class Page(BaseModel, Generic[T]):
    """A page of a list; `total` appears only when `include_total=true` was asked."""

    model_config = ConfigDict(from_attributes=True)

    items: list[T]
    next_cursor: str | None = None
    # exclude_if, not a wrapping serializer: the page stays on pydantic-core's direct path
    # to JSON instead of passing through a Python dict.
    total: int | None = Field(default=None, exclude_if=lambda total: total is None)


class PageResult(Generic[T]):
    """A page of rows as a service returns it; the router's `Page[...]` model renders it."""

    __slots__ = ("items", "next_cursor", "total")

    def __init__(self, items: list[T], next_cursor: str | None, total: int | None = None) -> None:
        self.items = items
        self.next_cursor = next_cursor
        self.total = total


@dataclass(frozen=True, slots=True)
class PageParams:
    limit: int
    cursor: str | None
    sort: str | None
    include_total: bool


# async: FastAPI runs a plain `def` dependency in a worker thread, a hop per request.
async def page_params(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page.")] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None, Query(max_length=1024, description="`next_cursor` of the previous page.")
    ] = None,
    sort: Annotated[
        str | None,
        Query(
            max_length=200,
            description="Comma-separated fields, `-` for descending (`-created_at,name`).",
        ),
    ] = None,
    include_total: Annotated[bool, Query(description="Add `total` (one more query).")] = False,
) -> PageParams:
    return PageParams(limit=limit, cursor=cursor, sort=sort, include_total=include_total)


PageParamsDep = Annotated[PageParams, Depends(page_params)]


SortColumn = InstrumentedAttribute[Any] | KeyedColumnElement[Any]
"""What a list sorts by: a model's column, or a named column of a computed set (a CTE's)."""


@dataclass(frozen=True, slots=True)
class _OrderItem:
    name: str
    column: SortColumn
    descending: bool


class Keyset:
    """The sortable fields of one collection and how to page through them.

    `name` names a computed list (the columns of a CTE); a table's list is named by its table.
    """

    def __init__(
        self,
        id_column: SortColumn,
        fields: Mapping[str, SortColumn],
        *,
        name: str | None = None,
    ) -> None:
        self.id_column = id_column
        self.fields = fields
        if name is None:
            assert isinstance(id_column, InstrumentedAttribute), "a computed list needs a name"
            name = str(id_column.class_.__tablename__)
        self._table = name  # a cursor belongs to one list

    def order(self, sort: str | None) -> list[_OrderItem]:
        """Parse `sort` against the whitelist; id is always the final tie-break."""
        items: list[_OrderItem] = []
        seen: set[str] = set()
        for raw in (sort or "").split(","):
            token = raw.strip()
            if not token:
                continue
            descending = token.startswith("-")
            name = token.lstrip("-+")
            if name not in self.fields and name != "id":
                allowed = ", ".join(sorted([*self.fields, "id"]))
                raise ValidationFailed(f"Cannot sort by {name!r}; sortable fields: {allowed}.")
            if name in seen:
                continue
            seen.add(name)
            column = self.id_column if name == "id" else self.fields[name]
            items.append(_OrderItem(name, column, descending))
            if name == "id":
                break
        if not items or items[-1].name != "id":
            last_descending = items[-1].descending if items else False
            items.append(_OrderItem("id", self.id_column, last_descending))
        return items

    def apply(self, statement: Select[Any], params: PageParams) -> Select[Any]:
        """Add ordering, the cursor's lower bound and `LIMIT limit + 1` to `statement`."""
        order = self.order(params.sort)
        if params.cursor:
            values = self._decode(params.cursor, order)
            statement = statement.where(_after(order, values))
        return statement.order_by(
            *(item.column.desc() if item.descending else item.column.asc() for item in order)
        ).limit(params.limit + 1)

    def leading_id_bound(self, params: PageParams) -> tuple[Any, bool] | None:
        """(last id, descending) when the order starts with id and a cursor is given.

        A filter that walks another index keyed by the same id (a link table) can then start
        at the cursor too: PostgreSQL does not carry `id > n` across a join or semi-join.
        """
        if not params.cursor:
            return None
        order = self.order(params.sort)
        if order[0].name != "id":
            return None
        return self._decode(params.cursor, order)[0], order[0].descending

    def page(self, rows: Sequence[Any], params: PageParams) -> tuple[list[Any], str | None]:
        """Split the fetched rows into the page and the cursor of the next one."""
        items = list(rows[: params.limit])
        if len(rows) <= params.limit:
            return items, None
        order = self.order(params.sort)
        last = items[-1]
        values = [getattr(last, item.column.key) for item in order]
        return items, self._encode(order, values)

    def _signature(self, payload: bytes) -> str:
        digest = hmac.new(_CURSOR_KEY, payload, hashlib.sha256).digest()[:12]
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def _encode(self, order: list[_OrderItem], values: list[Any]) -> str:
        body = {
            "t": self._table,
            "s": [("-" if i.descending else "") + i.name for i in order],
            "v": [_plain(value) for value in values],
        }
        payload = json.dumps(body, separators=(",", ":")).encode()
        encoded = base64.urlsafe_b64encode(payload).decode().rstrip("=")
        return f"{encoded}.{self._signature(payload)}"

    def _decode(self, cursor: str, order: list[_OrderItem]) -> list[Any]:
        invalid = ValidationFailed("The cursor is not valid for this list and sort.")
        encoded, _, signature = cursor.partition(".")
        try:
            payload = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        except (binascii.Error, ValueError):
            raise invalid from None
        if not hmac.compare_digest(signature, self._signature(payload)):
            raise invalid
        try:
            body = json.loads(payload)
            expected = [("-" if i.descending else "") + i.name for i in order]
            foreign = body["t"] != self._table or body["s"] != expected
            if foreign or len(body["v"]) != len(order):
                raise invalid
            return [
                _typed(item.column, value) for item, value in zip(order, body["v"], strict=True)
            ]
        except (KeyError, TypeError, ValueError, json.JSONDecodeError):
            raise invalid from None


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    return value


def _typed(column: SortColumn, value: Any) -> Any:
    python_type = column.type.python_type
    if value is None:
        raise ValueError("keyset values are never null")
    if python_type is datetime:
        return datetime.fromisoformat(value)
    if issubclass(python_type, enum.Enum):
        return python_type(value)
    if python_type is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if python_type is str and isinstance(value, str):
        return value
    raise ValueError("unexpected cursor value")


def _after(order: list[_OrderItem], values: list[Any]) -> ColumnElement[bool]:
    """Rows strictly after `values` in `order` (a row comparison when directions agree)."""
    if len({item.descending for item in order}) == 1:
        left = tuple_(*(item.column for item in order))
        right = tuple_(*values)
        return left < right if order[0].descending else left > right
    clauses = []
    for index, item in enumerate(order):
        equal = [order[j].column == values[j] for j in range(index)]
        beyond = item.column < values[index] if item.descending else item.column > values[index]
        clauses.append(and_(*equal, beyond))
    return or_(*clauses)


async def fetch_page(
    session: AsyncSession,
    statement: Select[Any],
    keyset: Keyset,
    params: PageParams,
    *,
    rows: bool = False,
    count_statement: Select[Any] | None = None,
) -> PageResult[Any]:
    """Run a filtered statement as one page (plus a count when `include_total` is set).

    `rows=True` returns result rows (for multi-column views) instead of ORM entities;
    `count_statement` counts a cheaper equivalent of `statement` when it has one.
    """
    paged = keyset.apply(statement, params)
    result = (await session.execute(paged)).all() if rows else (await session.scalars(paged)).all()
    items, next_cursor = keyset.page(result, params)
    total = None
    if params.include_total:
        counted = (count_statement if count_statement is not None else statement).order_by(None)
        total = await session.scalar(select(func.count()).select_from(counted.subquery()))
    return PageResult(items, next_cursor, total)
