"""Command-line interface: ``needleplan info|segment|plan|render|gui|demo``.

Each subcommand lives in ``needleplan/_commands/<name>.py`` and provides
``add_parser(subparsers)`` (which sets ``func``).  All of them are thin wrappers over the
same core functions the GUI calls.  Exit status: 0 success, 2 bad input (one line on
stderr), 1 internal error.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from needleplan import __version__
from needleplan.errors import NeedlePlanError

__all__ = ["main", "COMMANDS"]

COMMANDS = ("info", "segment", "plan", "render", "gui", "demo")

log = logging.getLogger("needleplan")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="needleplan",
        description="Plan percutaneous spine needle procedures on CT.",
    )
    parser.add_argument("--version", action="version", version=f"needleplan {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="show debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        mod = importlib.import_module(f"needleplan._commands.{name}")
        mod.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status (also used by ``python -m needleplan``)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="needleplan: %(message)s",
        stream=sys.stderr,
    )
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except NeedlePlanError as exc:
        print(f"needleplan {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"needleplan {args.command}: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print(f"needleplan {args.command}: error: not enough memory for this input", file=sys.stderr)
        return 2
    except Exception as exc:  # internal error: short message, traceback only when asked
        if args.verbose or os.environ.get("NEEDLEPLAN_DEBUG"):
            raise
        print(f"needleplan {args.command}: internal error: {type(exc).__name__}: {_one_line(exc)} "
              f"(run with -v for details; please report it)", file=sys.stderr)
        return 1


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
