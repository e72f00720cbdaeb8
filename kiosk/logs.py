"""Logging set-up: text or JSON lines, every line passed through the privacy redactor.

Redaction happens in the formatter, on the finished line, so it covers the message, its
arguments, `extra` fields and exception tracebacks alike, whichever logger emitted them
(ours, aiohttp's, Kivy's in `KIVY_LOG_MODE=PYTHON`).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TextIO

from pythonjsonlogger.json import JsonFormatter

from kiosk.privacy import Redactor

_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s"


class RedactingFormatter(logging.Formatter):
    """Wraps another formatter and redacts its output."""

    def __init__(self, inner: logging.Formatter, redactor: Redactor) -> None:
        super().__init__()
        self.inner = inner
        self.redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        return self.redactor.redact(self.inner.format(record))


def make_formatter(fmt: str, redactor: Redactor) -> logging.Formatter:
    if fmt == "json":
        inner: logging.Formatter = JsonFormatter(
            _JSON_FIELDS,
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            json_ensure_ascii=False,
        )
    else:
        inner = logging.Formatter(_TEXT_FORMAT)
    return RedactingFormatter(inner, redactor)


def setup_logging(
    *,
    level: str = "INFO",
    fmt: str = "text",
    file: Path | None = None,
    redactor: Redactor,
    stream: TextIO | None = None,
) -> list[logging.Handler]:
    """Route the root logger to stderr (and a file if given), redacted. Returns the handlers."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_kiosk_handler", False):
            root.removeHandler(handler)
            handler.close()
    handlers: list[logging.Handler] = [logging.StreamHandler(stream or sys.stderr)]
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(file, encoding="utf-8"))
    formatter = make_formatter(fmt, redactor)
    for handler in handlers:
        handler.setFormatter(formatter)
        handler._kiosk_handler = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level)
    return handlers
