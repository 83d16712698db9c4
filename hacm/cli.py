"""What every `python -m hacm.<stage>` shares: its exit codes, a quiet Ctrl-C while it starts, and its shape.

Exit codes: 0 done; 1 the data or the run failed (bad store, checkpoint, non-finite loss); 2 a usage or
configuration error; 130 interrupted (Ctrl-C), with one line saying what was kept.

The shape of a command (hacm.pretrain, hacm.evaluate, hacm.visualize): parse its arguments, load and check
its config (`start_run`; a mistake is `usage_error`), then call its stage through `run_stage` (a resumable
run) or `run_command`, which turn the errors the stage expects into one `<prog>: error: ...` line and an
exit code.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

EXIT_OK, EXIT_RUN_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def one_line(text: object, *, limit: int | None = None) -> str:
    """Text (an error) with its whitespace runs, newlines too, folded into single spaces; cut at `limit`."""
    folded = " ".join(str(text).split())
    return folded if limit is None or len(folded) <= limit else folded[: limit - 3] + "..."


class OneLineParser(argparse.ArgumentParser):
    """Usage errors as one `<prog>: error: ...` line and exit 2, like every other bad input."""

    def error(self, message: str):
        # The stage's name, e.g. hacm.tables from "python -m hacm.tables" (subcommand parsers included).
        name = next((word for word in self.prog.split() if word.startswith("hacm.")), self.prog)
        self.exit(EXIT_USAGE, f"{name}: error: {message} (see --help)\n")


def json_object_argument(parser: argparse.ArgumentParser, text: str, option: str = "--json") -> dict:
    """A command-line JSON object, or the parser's usage error (exit 2) saying what is wrong with it."""
    import json

    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        parser.error(f"{option} is not valid JSON ({error})")
    if not isinstance(document, dict):
        parser.error(f"{option} must be a JSON object, got {type(document).__name__}")
    return document


def quiet_interrupts_while_starting(prog: str) -> None:
    """Until `interrupts_raise` is called, Ctrl-C exits 130 with one line instead of a traceback from
    inside an import (torch takes seconds to import; nothing has been written yet)."""

    def stop(signum, frame) -> None:
        print(f"{prog}: interrupted while starting; nothing was written", file=sys.stderr, flush=True)
        # Exit at once: an exception raised inside an import can be caught and turned into another error
        # by the module being imported (seen once: a RecursionError from scipy's import under load).
        os._exit(EXIT_INTERRUPTED)

    global _starting
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not where SIGINT is ignored (nohup, &)
        _starting = stop
        signal.signal(signal.SIGINT, stop)


def start_process(prog: str) -> None:
    """What a compute stage run as a command does first, before its heavy imports: the allocator settings
    (`hacm.runtime`; re-executing the bare interpreter costs ~0.1 s, after torch's import it cost ~2 s more
    per job, ~2 minutes of the embedded workflow's 50 jobs) and a quiet Ctrl-C while it starts."""
    from hacm.runtime import ensure_allocator_settings

    ensure_allocator_settings()
    quiet_interrupts_while_starting(prog)


def interrupts_raise() -> None:
    """Ctrl-C raises KeyboardInterrupt again, for the stage's own handling (save, say how to resume)."""
    global _starting
    if _starting is not None and signal.getsignal(signal.SIGINT) is _starting:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    _starting = None


_starting = None  # the start-up handler while it is installed


def run_parser(prog: str, description: str, *, config_help: str, set_example: str) -> argparse.ArgumentParser:
    """The arguments every resumable run stage (pretrain, evaluate) takes; the stage adds its own."""
    parser = argparse.ArgumentParser(prog=f"python -m {prog}", description=description)
    parser.add_argument("--config", type=Path, required=True, help=config_help)
    parser.add_argument("--data", type=Path, required=True, help="converted split folder with train/ and test/")
    parser.add_argument("--out", type=Path, required=True, help="run folder (resumed when it has a checkpoint)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help=f"override a config value, e.g. --set {set_example} (repeatable)")
    parser.add_argument("--restart-on-change", action="store_true",
                        help="discard a checkpoint written with another configuration instead of failing (the workflow "
                             "reruns a job only when its configuration or inputs changed)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def usage_error(prog: str, message: object) -> int:
    """A mistake in a command's arguments or config: one `<prog>: error: ...` line; the exit code (2)."""
    print(f"{prog}: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def start_run(prog: str, args: argparse.Namespace, load_config):
    """A run stage's start: Ctrl-C raises again, and its config, `load_config(file, overrides)`; None after
    printing the one-line error of a bad config."""
    from hacm.config import ConfigError

    interrupts_raise()
    try:
        return load_config(args.config, args.overrides)
    except ConfigError as error:
        usage_error(prog, error)
        return None


def run_command(prog: str, body, *, errors: tuple[type[BaseException], ...], code: int = EXIT_RUN_ERROR) -> int:
    """What `body()` returns; an expected error (one of `errors`) is one `<prog>: error: ...` line and `code`."""
    try:
        return body()
    except errors as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return code


def run_stage(prog: str, body, *, errors: tuple[type[BaseException], ...], out) -> int:
    """Run a resumable stage's `body()`: an expected error is one line and exit 1; Ctrl-C is one line saying
    how to resume `out`, exit 130; otherwise what body() returns."""
    try:
        return run_command(prog, body, errors=errors)
    except OSError as error:  # a full disk, a quota, a file system gone: what and where, then how to go on
        where = error.filename or f"the run folder {out}"
        print(f"{prog}: error: {where}: {error.strerror or error}; once that is fixed, run the same command again "
              f"to resume {out} from its last checkpoint", file=sys.stderr)
        return EXIT_RUN_ERROR
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; run the same command again to resume {out} from its last checkpoint",
              file=sys.stderr)
        return EXIT_INTERRUPTED
