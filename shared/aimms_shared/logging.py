"""structlog, configured once: JSON in containers, readable on a terminal."""

import logging
import sys

import structlog

_configured = False


def configure_logging(log_format: str = "auto", level: str = "INFO") -> None:
    """Configure structlog and route stdlib logging (uvicorn, aiokafka) through it."""
    global _configured
    # `uvicorn` sets up its own loggers before it builds the app (and again in each worker): take
    # them over whenever an app is built, not only the first time.
    _route_uvicorn()
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
    renderer = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(exception_formatter=_traceback_without_locals())
    )
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
    # aiokafka logs every reconnect attempt at ERROR while a broker is down; keep it readable.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL if level.upper() != "DEBUG" else logging.DEBUG)


def _route_uvicorn() -> None:
    """uvicorn's own records go through our handler; its access log is off.

    uvicorn's access line quotes the raw path and query, and a path may hold a credential (a
    questionnaire's `/surveys/{token}`, an answer link, an opt-out link). Each service writes its
    own access line instead (`http.access`, from `RequestContextMiddleware`), naming the matched
    route's template, never the path. uvicorn logs access only if its logger has a handler,
    counting its ancestors', so with none and no propagation it writes nothing, whatever flags it
    was started with.
    """
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    access = logging.getLogger("uvicorn.access")
    access.handlers.clear()
    access.propagate = False
    access.disabled = True


def _traceback_without_locals() -> structlog.typing.ExceptionRenderer:
    """Tracebacks for a terminal, without the frames' local variables (a link's token, a key, an address)."""
    if getattr(structlog.dev, "rich", None) is None:
        return structlog.dev.plain_traceback
    return structlog.dev.RichTracebackFormatter(show_locals=False)
