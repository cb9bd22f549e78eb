"""The ops and managers' CLI: start an engagement from a spec, send it commands, find and read engagements.

It only talks to Temporal: every command is an Update that the workflow validates, so a bad or
ill-timed command is refused with the reason and changes nothing. This entry point parses the
command line with plain Python and imports the rest (pydantic, the Temporal client) only when a
command runs, so ``--help`` answers at once. Whatever happens, a person sees one line and an exit
code (README "Exit codes"), never a traceback (``ENGAGEMENT_DEBUG=1`` shows it).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from cli.args import parser
from cli.errors import CliError, Exit


def _one_line(text: str, limit: int = 500) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _explain(error: BaseException) -> tuple[str, Exit]:
    """The line and exit code for an error the commands did not turn into a CliError themselves."""
    from pydantic import ValidationError
    from temporalio.service import RPCError, RPCStatusCode

    from domain.spec import SpecError, describe_validation_error

    if isinstance(error, CliError):
        return str(error), error.code
    if isinstance(error, SpecError):
        return str(error), Exit.BAD_INPUT
    if isinstance(error, ValidationError):
        return describe_validation_error(error), Exit.BAD_INPUT
    if isinstance(error, RPCError):
        if error.status == RPCStatusCode.UNAVAILABLE:
            return f"lost Temporal: {_one_line(error.message)}", Exit.UNREACHABLE
        if error.status in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED):
            return "Temporal did not answer in time", Exit.UNREACHABLE
        return f"Temporal refused: {_one_line(error.message)}", Exit.REFUSED
    return f"unexpected {type(error).__name__}: {_one_line(str(error))}", Exit.UNEXPECTED


def _quiet_stdout() -> None:
    """The reader went away (``status | head``): send whatever is still buffered nowhere."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(sys.argv[1:] if argv is None else argv)  # usage errors exit 2 here
    try:
        if args.command == "list":  # a wrong filter is refused before anything heavy loads
            from cli.query import list_query

            args.query = list_query(args)
        import asyncio

        from cli.run import run

        return int(asyncio.run(run(args)))
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return Exit.INTERRUPTED
    except BrokenPipeError:
        _quiet_stdout()
        return Exit.OK
    except Exception as error:
        if os.environ.get("ENGAGEMENT_DEBUG"):
            raise
        message, code = _explain(error)
        print(f"error: {message}", file=sys.stderr)
        return code


def entrypoint() -> None:
    status = main()
    if "adapters.telemetry" in sys.modules:  # only if this command traced (a setting): its spans go out
        from adapters.telemetry import flush_traces

        flush_traces()
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _quiet_stdout()
    sys.stderr.flush()
    # temporalio/sdk-python#300: teardown after using a client can abort the interpreter (134/139)
    # although the work succeeded; leave with the real status before teardown runs.
    os._exit(status)


if __name__ == "__main__":
    entrypoint()
