"""structlog, configured once: JSON in containers, readable on a terminal."""

import logging
import sys

import structlog

_configured = False


def configure_logging(log_format: str = "auto", level: str = "INFO") -> None:
    """Configure structlog and route stdlib logging (uvicorn, aiokafka) through it."""
    global _configured
    if _configured:
        return
    _configured = True
    as_json = log_format == "json" or (log_format == "auto" and not sys.stderr.isatty())
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer = structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info if as_json else (lambda _l, _m, e: e),
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # uvicorn installs its own plain handlers; send its records through ours instead.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    # aiokafka logs every reconnect attempt at ERROR while a broker is down; keep it readable.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL if level.upper() != "DEBUG" else logging.DEBUG)
