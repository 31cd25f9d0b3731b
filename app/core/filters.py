"""Types that list filters share."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AwareDatetime, BeforeValidator
from pydantic_core import PydanticCustomError

_STARTS_WITH_A_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")


def _iso_8601_only(value: Any) -> Any:
    # Pydantic also reads "0.5" as seconds since 1970: not what a date-time filter means.
    if isinstance(value, str) and not _STARTS_WITH_A_DATE.match(value):
        raise PydanticCustomError(
            "datetime_format", "Input should be an ISO 8601 date-time with a time zone"
        )
    return value


Timestamp = Annotated[AwareDatetime, BeforeValidator(_iso_8601_only)]
"""An ISO 8601 date-time with a time zone (`2026-01-31T08:00:00Z`) in a query string."""
