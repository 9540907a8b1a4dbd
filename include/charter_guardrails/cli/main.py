"""The ``charter`` command.

Exit codes: 0 ok, 1 a check failed (or a verification found a problem), 2 usage or
configuration error. Every command has ``--help``; commands that report take ``--json``.

Commands live in ``charter_guardrails.cli``: each module has ``register(subparsers)``.
Heavy libraries (pandas, Great Expectations, Presidio) are imported inside handlers only,
so that light commands such as ``charter verify`` start fast.

The global option ``--lang fr|en`` (before the command) chooses the language of the check summaries that
commands print (:func:`summary_in`); English by default. ``--json`` output is the same in every language.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import pkgutil
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from charter_guardrails import __version__
from charter_guardrails.core.errors import ConfigError, LedgerUnavailable
from charter_guardrails.core.messages import DEFAULT_LANGUAGE, LANGUAGES, Language, Message, as_language, render

if TYPE_CHECKING:
    from charter_guardrails.core.results import CheckResult

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse exits 2 already; keep its message short and helpful
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n(see `{self.prog} --help`)\n")


def emit(args: argparse.Namespace, data: Any, human: str | Callable[[], str]) -> None:
    """Print ``data`` as JSON with ``--json``, else the human text."""
    if getattr(args, "json", False):
        print(json.dumps(data, indent=2, ensure_ascii=False, default=str))
    else:
        print(human() if callable(human) else human)


def language(args: argparse.Namespace) -> Language:
    """The language chosen with ``--lang`` (English when the namespace has none)."""
    return as_language(getattr(args, "lang", None))


def summary_in(args: argparse.Namespace, result: CheckResult) -> str:
    """``result``'s summary in the language chosen with ``--lang``."""
    return result.summary_in(language(args))


def message_in(args: argparse.Namespace, message: Message, english: str) -> str:
    """``message`` in the language chosen with ``--lang``; ``english`` as is in English."""
    lang = language(args)
    return english if lang == "en" else render(message, lang)


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable output on stdout")


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    """A plain-text table, no dependency."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="charter",
        description=(
            "Charter guardrails for Airflow data pipelines: policies, integrity, personal data, quality, audit."
        ),
        epilog="Exit codes: 0 ok, 1 a check failed, 2 usage or configuration error.",
    )
    parser.add_argument("--version", action="version", version=f"charter {__version__}")
    parser.add_argument(
        "--lang",
        choices=LANGUAGES,
        default=DEFAULT_LANGUAGE,
        help="language of the check summaries the commands print (default: %(default)s)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    subparsers.required = True
    import charter_guardrails.cli as commands

    for module_info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if module_info.name == "main":
            continue
        module = importlib.import_module(f"charter_guardrails.cli.{module_info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.parse_args([*(argv or sys.argv[1:]), "--help"])
        return EXIT_USAGE
    global _exit_promptly
    _exit_promptly = bool(getattr(args, "exit_promptly", False))
    try:
        return int(handler(args) or 0)
    except ConfigError as exc:
        _error(args, exc, "config")
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except LedgerUnavailable as exc:
        _error(args, exc, "ledger_unavailable")
        return EXIT_USAGE


#: True in the ``charter`` process itself (not when :func:`main` is called by a library or a test):
#: a command may then fork a helper process early, before any thread exists.
console_script = False

#: Set by :func:`main` for commands whose work is fully committed when they return (see :func:`entry`).
_exit_promptly = False


def entry() -> None:
    """The ``charter`` console script.

    Commands that declare ``exit_promptly`` (``charter verify``, ``charter hash``) skip the interpreter's
    teardown once their result is committed and printed: freeing every module of SQLAlchemy and
    cryptography costs a tenth of a second or more, a large share of a scheduled re-verification.
    Output is flushed and ledger connections are closed first; SQLite commits are already durable
    (WAL, ``synchronous=FULL``). Any other command, or an uncaught error, exits normally.
    """
    global console_script
    console_script = True
    code = main()
    if _exit_promptly:
        db = sys.modules.get("charter_guardrails.ledger.db")
        if db is not None:
            db.reset_caches()
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def _error(args: argparse.Namespace, exc: Exception, kind: str) -> None:
    if getattr(args, "json", False):
        to_json = getattr(exc, "to_json_dict", None)
        print(
            json.dumps(
                {"error": kind, "message": str(exc), **(to_json() if callable(to_json) else {})}, ensure_ascii=False
            )
        )
    print(f"charter: error: {exc}", file=sys.stderr)


if __name__ == "__main__":
    entry()
