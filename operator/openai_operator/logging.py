"""Structured logging for the operator, passed through the one redactor.

One pipeline for everything: our own code logs through structlog, while Kopf, httpx, hvac and the
kubernetes client log through the standard library. :func:`configure_logging` routes stdlib records
through the same processors (structlog's ``ProcessorFormatter``), so every line, whoever wrote it,
is rendered the same way (JSON by default, a console renderer for humans) and, above all, passes
through :func:`redaction_processor` last before rendering.

The text rules are :func:`openai_operator.redaction.redact` (re-exported here as :func:`redact`),
the same function that cleans Event, condition and error messages: key material goes, ids stay.
It is applied to every string anywhere in the event (nested dicts, lists, tuples, exception text).
The one rule only structured data can have is by field *name* (:func:`is_secret_field`): the whole
value of a field whose name looks secret is hidden, containing ``key`` (but not the known-safe id
fields such as ``key_id``, ``keyId``, ``api_key_id`` or ``redacted_value``), ``token``, ``secret``,
``password``, ``credential``, or named ``authorization``, ``cookie`` or ``value``. Numbers, booleans
and ``None`` under such names are kept (``max_tokens_per_1_minute=1000`` is not a secret).
"""

from __future__ import annotations

import io
import logging
import sys
import traceback
from collections.abc import Mapping
from types import TracebackType
from typing import Final, Literal, TextIO

import structlog
from structlog.typing import EventDict, ExcInfo, Processor, WrappedLogger

from openai_operator.redaction import REDACTED, redact
from openai_operator.secretvalue import SecretValue

__all__ = [
    "REDACTED",
    "LogFormat",
    "build_processors",
    "configure_logging",
    "is_secret_field",
    "redact",
    "redact_value",
    "redaction_processor",
]

LogFormat = Literal["json", "console"]

_SAFE_FIELD_SUFFIXES: Final = ("keyid", "keyids")
_SAFE_FIELD_PREFIXES: Final = ("redacted",)
_SAFE_FIELDS: Final = frozenset(
    {"keyname", "keyref", "keycount", "keys", "secretname", "secretref", "secretnamespace", "fingerprint"}
)
_SECRET_FIELD_PARTS: Final = ("key", "token", "secret", "password", "passwd", "credential")
_SECRET_FIELDS: Final = frozenset({"authorization", "cookie", "setcookie", "value", "proxyauthorization"})
# Entries structlog and the renderers need untouched (exc_info is rendered by format_exc_info or
# the console exception formatter, both of which redact their output).
_PASSTHROUGH_FIELDS: Final = frozenset({"exc_info", "_record", "_from_structlog"})
_MAX_DEPTH: Final = 8


def _normalise(name: str) -> str:
    return "".join(c for c in name.lower() if c.isalnum())


def is_secret_field(name: str) -> bool:
    """Tell whether a field called ``name`` should have its whole (non-numeric) value hidden.

    ``key_id``/``keyId``/``api_key_id``/``api_key_ids``, ``redacted_value``/``redactedKey`` and a few
    other names that carry identifiers, not secrets, are exempt from the ``*key*`` rule.
    """
    norm = _normalise(name)
    if not norm:
        return False
    if norm in _SECRET_FIELDS:
        return True
    if norm in _SAFE_FIELDS or norm.endswith(_SAFE_FIELD_SUFFIXES) or norm.startswith(_SAFE_FIELD_PREFIXES):
        return False
    return any(part in norm for part in _SECRET_FIELD_PARTS)


def _exception_text(exc: BaseException) -> str:
    return redact(f"{type(exc).__name__}: {exc}")


def redact_value(value: object, *, _depth: int = 0) -> object:
    """Redact credential-shaped text inside ``value``, recursing into containers.

    Mapping entries whose key :func:`is_secret_field` are replaced by ``[REDACTED]`` (unless the
    value is a number, a bool or ``None``). Objects of other types are turned into their redacted
    ``repr`` (exceptions into ``"Type: message"``), because the JSON renderer would otherwise fall
    back to an unredacted ``repr`` of its own.
    """
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, SecretValue):
        return repr(value)
    if isinstance(value, bytes | bytearray):
        return redact(bytes(value).decode("utf-8", "replace"))
    if isinstance(value, BaseException):
        return _exception_text(value)
    if _depth >= _MAX_DEPTH:
        return REDACTED
    if isinstance(value, Mapping):
        return {
            k: (_redact_field(k, v, _depth + 1) if isinstance(k, str) else redact_value(v, _depth=_depth + 1))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        items = [redact_value(v, _depth=_depth + 1) for v in value]
        return items if isinstance(value, list | set | frozenset) else tuple(items)
    return redact(repr(value))


def _redact_field(name: str, value: object, depth: int) -> object:
    if is_secret_field(name) and not (value is None or isinstance(value, bool | int | float)):
        return REDACTED
    return redact_value(value, _depth=depth)


def redaction_processor(_logger: WrappedLogger, _method_name: str, event_dict: EventDict) -> EventDict:
    """structlog processor: redact every value of the event (see the module docstring).

    Put it after ``format_exc_info`` (so rendered tracebacks are redacted too) and right before the
    renderer (so nothing added later escapes it).
    """
    for name, value in list(event_dict.items()):
        if name in _PASSTHROUGH_FIELDS:
            continue
        if name == "event":
            event_dict[name] = redact_value(value)
        else:
            event_dict[name] = _redact_field(name, value, 0)
    return event_dict


def _redacting_exception_formatter(sio: TextIO, exc_info: ExcInfo) -> None:
    """Console exception formatter: a plain traceback, redacted.

    The console renderer formats ``exc_info`` itself (after all processors ran), so its output would
    bypass :func:`redaction_processor`; this formatter closes that gap.
    """
    buf = io.StringIO()
    exc_type: type[BaseException] | None = exc_info[0]
    exc: BaseException | None = exc_info[1]
    tb: TracebackType | None = exc_info[2]
    traceback.print_exception(exc_type, exc, tb, file=buf)
    sio.write("\n" + redact(buf.getvalue()).rstrip("\n"))


def _compact_kopf_fields(_logger: WrappedLogger, _method_name: str, event_dict: EventDict) -> EventDict:
    """Kopf's object loggers attach the whole operator settings and a reference dict to every
    record; keep one readable ``object`` field instead of several kilobytes of noise."""
    event_dict.pop("settings", None)
    event_dict.pop("k8s_skip", None)
    ref = event_dict.pop("k8s_ref", None)
    if isinstance(ref, dict):
        where = f"{ref.get('namespace')}/" if ref.get("namespace") else ""
        event_dict["object"] = f"{ref.get('kind')} {where}{ref.get('name')}"
    return event_dict


def _renderer(fmt: LogFormat, *, colors: bool) -> Processor:
    if fmt == "json":
        return structlog.processors.JSONRenderer(sort_keys=False)
    return structlog.dev.ConsoleRenderer(colors=colors, exception_formatter=_redacting_exception_formatter)


def build_processors(
    fmt: LogFormat = "json", *, colors: bool = False
) -> tuple[list[Processor], list[Processor]]:
    """Return ``(pre_chain, final_chain)`` for structlog and the stdlib bridge.

    ``pre_chain`` enriches an event (level, logger name, timestamp, context vars) and runs for both
    structlog and stdlib records; ``final_chain`` runs in the stdlib formatter and ends with
    redaction and the renderer. Exposed so tests and tools can build the same pipeline.
    """
    pre_chain: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.PositionalArgumentsFormatter(),
        structlog.stdlib.ExtraAdder(),
        _compact_kopf_fields,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]
    final_chain: list[Processor] = [structlog.stdlib.ProcessorFormatter.remove_processors_meta]
    if fmt == "json":
        final_chain.append(structlog.processors.format_exc_info)
    final_chain += [redaction_processor, _renderer(fmt, colors=colors)]
    return pre_chain, final_chain


class _OperatorHandler(logging.StreamHandler[TextIO]):
    """The handler :func:`configure_logging` installs; a type of its own so a second call replaces it."""


def configure_logging(
    fmt: LogFormat = "json",
    *,
    level: int | str = logging.INFO,
    stream: TextIO | None = None,
    quiet_loggers: Mapping[str, int | str] | None = None,
    exclusive: bool = False,
) -> logging.Handler:
    """Configure structlog and the stdlib root logger to share one redacting pipeline.

    Called once by the operator's entry point (never at import). Returns the installed handler so a
    caller (or a test) can remove it again. ``quiet_loggers`` sets per-logger levels; by default
    ``httpx`` and ``httpcore`` are lowered to WARNING because :mod:`openai_operator.openai.client`
    already writes one structured line per request, with the path template instead of the URL.

    ``exclusive=True`` removes every other handler from the root logger first. The operator's entry
    point should pass it: a handler added by someone else (``kopf run`` installs its own formatter on
    the root logger) would print the same records again, unredacted.

    Loggers are not cached on first use (``cache_logger_on_first_use=False``): the operator logs at a
    modest rate, and caching would make ``structlog.testing.capture_logs`` and later reconfiguration
    silently miss loggers that were used before.
    """
    colors = fmt == "console" and stream is None and sys.stderr.isatty()
    pre_chain, final_chain = build_processors(fmt, colors=colors)
    structlog.configure(
        processors=[*pre_chain, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    # ExtraAdder and the positional-args formatter already ran for structlog events; for foreign
    # (stdlib) records the formatter's own pre-chain runs them.
    formatter = structlog.stdlib.ProcessorFormatter(foreign_pre_chain=pre_chain, processors=final_chain)
    handler = _OperatorHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        if exclusive or isinstance(old, _OperatorHandler):
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    quiet = (
        {"httpx": logging.WARNING, "httpcore": logging.WARNING} if quiet_loggers is None else quiet_loggers
    )
    for name, lvl in quiet.items():
        logging.getLogger(name).setLevel(lvl)
    return handler
