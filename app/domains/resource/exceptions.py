from __future__ import annotations

from app.core.errors import NotFound


class ResourceNotFound(NotFound):
    pass
