from __future__ import annotations

from app.core.constraints import Constraints
from app.core.errors import NotFound


class ProcessNotFound(NotFound):
    pass


CONSTRAINTS: Constraints = {}
