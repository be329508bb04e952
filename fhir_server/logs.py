"""Structured logs: one JSON object per line, carrying the request id of the request that caused it.

No PHI in logs, by construction rather than by care at each call site:
- the access line (``fhir_server.api.observability``) names the route *template* (``/fhir/{rtype}/{id}``), never
  the path or query string (``Patient?name=…`` would carry a name);
- an exception is logged as its type and stack frames (file, line, function), never its message or the
  values in it: a parser's message quotes the input, which can be a person's name or identifier.
Everything else is the fixed text of a log call. ``tests/ops/test_logs.py`` greps a real server's output for
the names and identifiers it sent.

A JSON formatter is twenty lines here; a library (python-json-logger) would still need the exception policy
above, so it would not save the part that matters.
"""

from __future__ import annotations

import logging
import os
import traceback
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import orjson

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName",
                                                                       "color_message"}


class JSONFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message", "request_id", "pid", ...extra, "exception": {type, frames}}``."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process or os.getpid(),
        }
        rid = getattr(record, "request_id", None) or request_id.get()
        if rid:
            entry["request_id"] = rid
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in entry and not key.startswith("_"):
                entry[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            exc_type, _, tb = record.exc_info
            entry["exception"] = {
                "type": f"{exc_type.__module__}.{exc_type.__qualname__}",
                "frames": [f"{f.filename}:{f.lineno} {f.name}" for f in traceback.extract_tb(tb)][-12:],
            }
        return orjson.dumps(entry, default=str).decode()


class TextFormatter(logging.Formatter):
    """Human-readable lines for a terminal (``FHIR_LOG_FORMAT=text``), with the same exception policy."""

    def format(self, record: logging.LogRecord) -> str:
        rid = request_id.get()
        line = f"{self.formatTime(record)} {record.levelname} {record.name} {record.getMessage()}"
        if rid:
            line += f" request_id={rid}"
        if record.exc_info and record.exc_info[0] is not None:
            line += f" exception={record.exc_info[0].__qualname__}"
            frames = traceback.extract_tb(record.exc_info[2])
            line += "".join(f"\n  at {f.filename}:{f.lineno} {f.name}" for f in frames[-12:])
        return line


def config(fmt: str = "json", level: str = "INFO") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` dict (uvicorn applies it in each worker process) routing the server's and
    uvicorn's loggers through one formatter to standard error."""
    formatter = "fhir_server.logs.JSONFormatter" if fmt == "json" else "fhir_server.logs.TextFormatter"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": {"()": formatter}},
        "handlers": {"default": {"class": "logging.StreamHandler", "formatter": "default",
                                 "stream": "ext://sys.stderr"}},
        "root": {"handlers": ["default"], "level": level.upper()},
        "loggers": {
            "uvicorn": {"handlers": [], "level": "WARNING", "propagate": True},
            "uvicorn.error": {"handlers": [], "level": "INFO", "propagate": True},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        },
    }
