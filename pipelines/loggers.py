"""The console logger of every job: Dagster's coloured console logger, made brief where a
run fails for an everyday reason.

A run that finds the warehouse busy past the lock wait (or its landing folder missing, or a
bad setting) used to print a hundred lines before ``labwh run``'s own four-line summary: the
step's stack trace through Dagster's internals, then one ``Dependencies for step … Not
executing.`` line for every later step. Those failures say what to do in their message, so
the console gets that message on one line, and the skipped steps are left to the summary
(and to the run's event log, which keeps every event and trace for the UI). A failure of any
other kind keeps its stack trace: that is a bug report.
"""

from __future__ import annotations

import logging

import dagster as dg
from dagster._loggers import colored_console_logger  # the default "console" logger

from transforms.feature_config import FeatureConfigError
from warehouse.locks import BadSetting, WarehouseBusy
from warehouse.steps import LandingMissing

# failures whose message names the cause and the remedy; a trace adds nothing to them
EVERYDAY_FAILURES = frozenset(
    c.__name__ for c in (WarehouseBusy, LandingMissing, BadSetting, FeatureConfigError)
)
_SKIPPED = ("Dependencies for step ", "Not executing.")


def root_error(error):
    """The error a step raised, out of the Dagster errors that wrap it (a
    ``SerializableErrorInfo``: ``cls_name``, ``message``, ``cause``)."""
    while error.cause is not None and error.cls_name.startswith("Dagster"):
        error = error.cause
    return error


def first_line(message: str) -> str:
    lines = [line.strip() for line in (message or "").splitlines() if line.strip()]
    return lines[0] if lines else "(no message)"


def error_text(error) -> str:
    """The first line of an error's message, without the ``module.Class: `` Dagster puts
    before it."""
    message = first_line(error.message)
    head, sep, rest = message.partition(": ")
    return rest if sep and head.rsplit(".", 1)[-1] == error.cls_name else message


class BriefEverydayFailures(logging.Filter):
    """Drops the skipped-step lines; an everyday failure (of a step, or of the run it ends)
    keeps Dagster's line and gets its error's message in place of the stack trace."""

    def filter(self, record: logging.LogRecord) -> bool:
        meta = getattr(record, "dagster_meta", None) or {}
        original = meta.get("orig_message") or ""
        if original.startswith(_SKIPPED[0]) and original.endswith(_SKIPPED[1]):
            return False
        event = getattr(record, "dagster_event", None)
        error = getattr(getattr(event, "event_specific_data", None), "error", None)
        if error is None:
            return True
        error = root_error(error)
        if error.cls_name in EVERYDAY_FAILURES:
            head = record.getMessage().split("\n\n", 1)[0]  # Dagster's line, then the trace
            record.msg = f"{head} {error_text(error)}"
            record.args = ()
        return True


@dg.logger(
    config_schema=colored_console_logger.config_schema,
    description="Dagster's console logger; everyday failures (warehouse busy, landing "
    "folder missing, bad setting) in one line, without the skipped steps.",
)
def console_logger(init_context: dg.InitLoggerContext) -> logging.Logger:
    logger = colored_console_logger.logger_fn(init_context)
    logger.addFilter(BriefEverydayFailures())
    return logger


LOGGERS = {"console": console_logger}
