"""Edge fixtures: the log lines a request writes."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from app.core.logging import JsonFormatter


class LogLines:
    """The JSON lines the app wrote, formatted exactly as on stdout."""

    def __init__(self, stream: io.StringIO) -> None:
        self._stream = stream

    @property
    def text(self) -> str:
        return self._stream.getvalue()

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text.splitlines() if line.strip()]

    def access(self) -> list[dict[str, Any]]:
        return [record for record in self.records() if record["logger"] == "app.access"]


@contextmanager
def captured_logs(formatter: logging.Formatter, level: int) -> Iterator[io.StringIO]:
    """Every log record written meanwhile, formatted by `formatter` into a string buffer."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(level)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(previous_level)


@pytest.fixture
def log_lines() -> Iterator[LogLines]:
    with captured_logs(JsonFormatter(), logging.DEBUG) as stream:
        yield LogLines(stream)
