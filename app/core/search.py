"""Case-insensitive substring search that treats the client's text literally."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, or_


def escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def contains(q: str, *columns: Any) -> ColumnElement[bool]:
    """`q` appears in any of `columns`, ignoring case; `%` and `_` match themselves."""
    pattern = f"%{escape_like(q)}%"
    return or_(*(column.ilike(pattern, escape="\\") for column in columns))
