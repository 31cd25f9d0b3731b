"""The small `{id, name}` and `{id, full_name}` objects responses embed for related rows."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class NamedSummary(BaseModel):
    """A related entity, named."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str


class PersonSummary(BaseModel):
    """A related user: owner, manager or author."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    full_name: str
