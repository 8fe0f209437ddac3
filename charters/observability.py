"""Logs and metrics of the charters processes.

`configure_logging` sets the root logger up once: human-readable lines, or one JSON object per
line (`CHARTERS_LOG_JSON=true`) carrying the workflow and activity the record came from, which
Temporal's SDK loggers attach as `temporal_workflow` / `temporal_activity` extras.

`metrics_runtime` builds the Temporal `Runtime` whose Prometheus exporter serves the SDK's
worker metrics and every custom metric (`workflow.metric_meter()`, `activity.metric_meter()`)
on a loopback port; the worker's health server proxies that text on its own `/metrics`.
"""

from __future__ import annotations

import json
import logging
import socket
import sys
import traceback
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

import temporalio.activity
import temporalio.workflow
from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    PrometheusConfig,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)

# Longest exception message kept in a log record; the rest is cut (a response body, say).
MAX_ERROR_MESSAGE = 1000

# Where the SDK-Core logs are forwarded to (so they share the configured format).
CORE_LOGGER = "temporalio.core"

# Keys of the SDK's `temporal_workflow` / `temporal_activity` extras that a JSON line keeps,
# under the name it gets there.
_TEMPORAL_FIELDS = {
    "workflow_id": "workflow_id",
    "run_id": "run_id",
    "workflow_run_id": "run_id",
    "workflow_type": "workflow_type",
    "activity_id": "activity_id",
    "activity_type": "activity_type",
    "attempt": "attempt",
    "task_queue": "task_queue",
    "namespace": "namespace",
    "update_id": "update_id",
    "update_name": "update_name",
}


def _clip(text: str, limit: int = MAX_ERROR_MESSAGE) -> str:
    return text if len(text) <= limit else text[:limit] + f"... [{len(text) - limit} more chars]"


def _describe(exc: BaseException) -> dict[str, str]:
    """A failure as type, clipped message and stack (file, line and source of each frame:
    Python tracebacks carry no local variables), plus the direct cause's type and message."""
    about = {
        "error_type": type(exc).__qualname__,
        "error": _clip(str(exc)),
        "traceback": "".join(traceback.format_tb(exc.__traceback__)).rstrip(),
    }
    cause = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    if cause is not None:
        about["error_cause"] = f"{type(cause).__qualname__}: {_clip(str(cause))}"
    return about


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the Temporal context when the
    record has one, and for failures the exception's type, (clipped) message and stack."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for extra in ("temporal_workflow", "temporal_activity"):
            details = getattr(record, extra, None)
            if isinstance(details, dict):
                for key, name in _TEMPORAL_FIELDS.items():
                    value = details.get(key)
                    if value is not None and name not in out:
                        out[name] = value
        if record.exc_info and record.exc_info[1] is not None:
            out.update(_describe(record.exc_info[1]))
        elif record.exc_text:
            out["traceback"] = _clip(record.exc_text)
        if record.stack_info:
            out["stack"] = record.stack_info
        return json.dumps(out, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """Human-readable lines; a failure shows its stack and its type and clipped message."""

    def formatException(self, ei: Any) -> str:  # noqa: N802 - logging's name
        exc = ei[1]
        if exc is None:
            return super().formatException(ei)
        about = _describe(exc)
        text = f"Traceback (most recent call last):\n{about['traceback']}\n"
        text += f"{about['error_type']}: {about['error']}"
        if "error_cause" in about:
            text += f"\ncaused by {about['error_cause']}"
        return text


def configure_logging(json: bool, level: str = "INFO") -> None:  # noqa: A002 - the setting's name
    """Root logger to stderr in the chosen format. With JSON, the SDK loggers stop appending
    their context dict to the message: it is in the record's fields instead."""
    handler = logging.StreamHandler(sys.stderr)
    if json:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.captureWarnings(True)  # warnings too become log lines in the chosen format
    temporalio.activity.logger.activity_info_on_message = not json
    temporalio.workflow.logger.workflow_info_on_message = not json


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class MetricsRuntime:
    runtime: Runtime
    metrics_url: str
    """The SDK's Prometheus exporter, on loopback (proxied by the worker's `/metrics`)."""


def metrics_runtime(attempts: int = 5) -> MetricsRuntime:
    """A Temporal `Runtime` exporting Prometheus metrics on a free loopback port, with Core's
    own logs forwarded to Python logging. Pass `.runtime` to `Client.connect(runtime=...)`."""
    last: Exception | None = None
    for _ in range(attempts):
        address = f"127.0.0.1:{free_port()}"
        try:
            runtime = Runtime(
                telemetry=TelemetryConfig(
                    logging=LoggingConfig(
                        filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),
                        forwarding=LogForwardingConfig(logger=logging.getLogger(CORE_LOGGER)),
                    ),
                    metrics=PrometheusConfig(bind_address=address),
                )
            )
        except Exception as exc:  # noqa: BLE001 - the port was taken meanwhile: try another
            last = exc
            continue
        return MetricsRuntime(runtime=runtime, metrics_url=f"http://{address}/metrics")
    raise RuntimeError(f"cannot start the Temporal metrics exporter: {last}")


@cache
def quiet_runtime() -> Runtime:
    """A Temporal `Runtime` whose Core logs only errors: for a tool that stops the server on
    purpose (`charters chaos`), where every retried gRPC call would print a warning."""
    return Runtime(
        telemetry=TelemetryConfig(
            logging=LoggingConfig(filter=TelemetryFilter(core_level="ERROR", other_level="ERROR"))
        )
    )
