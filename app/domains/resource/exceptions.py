from __future__ import annotations

from app.core.constraints import Constraints
from app.core.errors import NotFound, ValidationFailed


class ResourceNotFound(NotFound):
    pass


class NegativeQuantity(ValidationFailed):
    """The database refused a quantity below zero (the schemas refuse one first)."""

    constraint = "ck_resources_quantity_not_negative"

    def __init__(self) -> None:
        super().__init__("quantity cannot be negative.", extra={"constraint": self.constraint})


CONSTRAINTS: Constraints = {NegativeQuantity.constraint: lambda _: NegativeQuantity()}
