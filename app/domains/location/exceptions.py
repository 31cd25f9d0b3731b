from __future__ import annotations

from app.core.constraints import Constraints
from app.core.errors import NotFound


class LocationNotFound(NotFound):
    pass


# Locations have no unique values: no constraint of theirs needs a message of its own.
CONSTRAINTS: Constraints = {}
