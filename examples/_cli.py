"""What every example's command line shares: argument types that name what they expect, one-line errors, the
exit codes, the goal convention and a quiet Ctrl-C.

    parser = _cli.parser(__doc__)                    # --help: the docstring, every option with its default
    parser.add_argument("--epochs", type=_cli.positive_int, default=30, help="passes over the data")
    args = parser.parse_args(argv)
    ...
    sys.exit(_cli.run(main))                         # Ctrl-C: one line, exit 130

Exit codes (the same in every example; ``EXIT_CODES`` is the text --help shows):
    0 done (and the goal reached, when it was checked); 1 the goal was checked and missed; 2 bad arguments;
    3 training diverged (the examples that check for it); 130 interrupted (Ctrl-C).

The goal convention (``GOAL_RULE``): a run of the default length checks the example's goal; a shorter run (fewer
epochs, steps or minutes than the default) only reports how far it got and exits 0, unless ``--require-goal``
(or an explicit ``--goal`` value) asks for the check.
"""
from __future__ import annotations

import argparse
import contextlib
import gzip
import math
import os
import signal
import sys
import threading
from typing import Callable, Iterator

EXIT_CODES = ("exit codes: 0 done (goal reached, or not checked); 1 goal checked and missed; 2 bad arguments; "
              "3 training diverged; 130 interrupted (Ctrl-C)")
GOAL_RULE = ("goal: a run of the default length checks the goal; a shorter run only reports and exits 0, unless "
             "--require-goal (or a goal option such as --goal) is given")


def exit_codes(fail: str | None = None, diverges: bool = True) -> str:
    """EXIT_CODES (without 3 for an example that has no divergence check), or for an example that trains nothing:
    0 ok, 1 ``fail``, 2 bad arguments, 130 interrupted."""
    if fail is not None:
        return f"exit codes: 0 every check passed; 1 {fail}; 2 bad arguments; 130 interrupted (Ctrl-C)"
    return EXIT_CODES if diverges else EXIT_CODES.replace("3 training diverged; ", "")


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """The docstring as written, and "(default: ...)" after every option's help, unless the help already says it
    (a string default is shown quoted, so that a newline or an empty string can be seen)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if not action.option_strings or action.default is argparse.SUPPRESS or "(default" in text:
            return text
        shown = repr(action.default) if isinstance(action.default, str) else str(action.default)
        return f"{text} (default: {shown.replace('%', '%%')})"


class Parser(argparse.ArgumentParser):
    """argparse with a one-line error: ``<prog>: error: <message> (see --help)`` on stderr, exit 2 (no usage block)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def parser(doc: str, *, goal: bool | str = True, fail: str | None = None, diverges: bool = False) -> Parser:
    """A Parser whose --help shows ``doc`` (first line as the description, the rest below), the exit codes and,
    for examples that train towards a goal, the goal convention (``goal``: True for GOAL_RULE, a string for an
    example's own wording, False for none). ``fail``: what exit code 1 means in an example that trains nothing;
    ``diverges``: the example stops with exit code 3 when training diverges."""
    first, _, rest = doc.strip().partition("\n")
    rule = GOAL_RULE if goal is True else (goal or "")
    epilog = rest.strip("\n") + "\n\n" + exit_codes(fail, diverges) + ("\n" + rule if rule else "")
    return Parser(description=first, epilog=epilog, formatter_class=_Formatter, allow_abbrev=False)


def given(argv: list[str] | None, option: str) -> bool:
    """Whether ``option`` was on the command line (``--goal 0.8`` or ``--goal=0.8``; abbreviations are off)."""
    tokens = sys.argv[1:] if argv is None else [str(a) for a in argv]
    return any(t == option or t.startswith(option + "=") for t in tokens)


def add_require_goal(p: argparse.ArgumentParser) -> None:
    p.add_argument("--require-goal", action="store_true",
                   help="check the goal (exit 1 when missed) even when the run is shorter than the default")


def goal_checked(args: argparse.Namespace, budget: dict[str, object], p: argparse.ArgumentParser,
                 argv: list[str] | None = None, goal_options: tuple[str, ...] = ("--goal",)) -> bool:
    """True when the goal is to be checked: --require-goal, an explicit goal option (``goal_options``), or every
    option in ``budget`` (name -> value) at its default (a default-length run)."""
    if getattr(args, "require_goal", False) or any(given(argv, o) for o in goal_options):
        return True
    return all(value == p.get_default(name) for name, value in budget.items())


# ---- argument types: each raises argparse.ArgumentTypeError with what was expected and what came -----------------
def _number(kind: Callable, text: str, what: str):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def _in_range(kind: Callable, what: str, ok: Callable[[float], bool], doc: str) -> Callable[[str], float]:
    """An argument type: ``text`` read as ``kind`` (int or float), refused unless ``ok(value)``."""
    def parse(text: str):
        value = _number(kind, text, what)
        if not ok(value):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value
    parse.__doc__ = doc
    return parse


positive_int = _in_range(int, "a positive integer", lambda v: v >= 1, "An integer >= 1.")
nonnegative_int = _in_range(int, "an integer >= 0", lambda v: v >= 0, "An integer >= 0.")
seed = _in_range(int, "a seed: an integer >= 0", lambda v: v >= 0,
                 "A seed for numpy.random.default_rng: an integer >= 0 (NumPy refuses negative seeds).")
positive_float = _in_range(float, "a positive number", lambda v: v > 0, "A number > 0.")
nonnegative_float = _in_range(float, "a number >= 0", lambda v: v >= 0, "A number >= 0.")
probability = _in_range(float, "a probability in [0, 1)", lambda v: 0.0 <= v < 1.0,
                        "A dropout-like probability in [0, 1).")
open_fraction = _in_range(float, "a fraction in (0, 1)", lambda v: 0.0 < v < 1.0,
                          "A fraction strictly between 0 and 1.")
unit_interval = _in_range(float, "a number in [0, 1]", lambda v: 0.0 <= v <= 1.0, "A number in [0, 1] (an accuracy).")
percent = _in_range(float, "a percentage in [0, 100]", lambda v: 0.0 <= v <= 100.0,
                    "A number in [0, 100] (an accuracy in %).")


def existing_file(text: str) -> str:
    """A path to a readable regular file (not a directory)."""
    if os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"expected a file, got the directory {text!r}")
    if not os.path.isfile(text):
        raise argparse.ArgumentTypeError(f"no such file {text!r}")
    if not os.access(text, os.R_OK):
        raise argparse.ArgumentTypeError(f"cannot read {text!r} (permission denied)")
    return text


def text_file(text: str) -> str:
    """A UTF-8 text file: not a directory, not gzip or other binary data (checked on its first 64 KiB)."""
    existing_file(text)
    with open(text, "rb") as f:
        head = f.read(1 << 16)
    if head[:2] == b"\x1f\x8b":
        raise argparse.ArgumentTypeError(f"expected a UTF-8 text file, got gzip-compressed data in {text!r} "
                                         "(decompress it first)")
    if b"\x00" in head:
        raise argparse.ArgumentTypeError(f"expected a UTF-8 text file, got binary data in {text!r}")
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < len(head) - 4:                  # not just a character cut at the 64 KiB boundary
            raise argparse.ArgumentTypeError(f"expected a UTF-8 text file, {text!r} is not UTF-8 "
                                             f"(byte {e.start})") from None
    return text


def csv_file(text: str) -> str:
    """A CSV file, plain or gzip-compressed (its first bytes are checked: a gzip header must open)."""
    existing_file(text)
    with open(text, "rb") as f:
        head = f.read(2)
    if head == b"\x1f\x8b":
        try:
            with gzip.open(text, "rb") as g:
                g.read(1)
        except (OSError, EOFError) as e:
            raise argparse.ArgumentTypeError(f"{text!r} is not a readable gzip file ({e})") from None
    return text


def writable_path(text: str) -> str:
    """A path a file can be written to: not a directory, its folder exists and is writable."""
    if os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"expected a file path, got the directory {text!r}")
    folder = os.path.dirname(os.path.abspath(text))
    if not os.path.isdir(folder):
        raise argparse.ArgumentTypeError(f"the folder of {text!r} does not exist")
    if not os.access(folder, os.W_OK):
        raise argparse.ArgumentTypeError(f"cannot write into the folder of {text!r} (permission denied)")
    return text


def need_matplotlib(p: argparse.ArgumentParser, path: str | None) -> None:
    """With --plot: a one-line error (exit 2) before any work when matplotlib is missing."""
    if path:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            p.error("--plot needs matplotlib, which is not installed: pip install matplotlib")


def plot_losses(path: str, losses: list[float]) -> None:
    """The training loss per epoch as a PNG (matplotlib, imported only here: --plot is optional)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(range(1, len(losses) + 1), losses, label="Training Loss")
    ax.set(xlabel="Epoch", ylabel="Loss", title="RNN Training Loss Over Epochs")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


@contextlib.contextmanager
def children_ignore_sigint() -> Iterator[None]:
    """Processes started inside this block ignore Ctrl-C (an ignored signal stays ignored across exec), so that the
    terminal's SIGINT, which reaches the whole process group, is handled by this process alone: the example stops
    with one line, and its helper process ends when this one has closed the pipes to it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)


class DeferredInterrupt:
    """From ``DeferredInterrupt()`` until ``restore()``, a first Ctrl-C only sets ``requested``, and the loop stops
    at its next ``check()`` -- a point where no request to a helper process is in flight -- by raising
    KeyboardInterrupt there; a second Ctrl-C interrupts at once."""

    def __init__(self) -> None:
        self.requested = False
        self._before = None
        if threading.current_thread() is threading.main_thread():
            self._before = signal.signal(signal.SIGINT, self._handler)

    def _handler(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def check(self) -> None:
        if self.requested:
            raise KeyboardInterrupt

    def restore(self) -> None:
        if self._before is not None:
            signal.signal(signal.SIGINT, self._before)
            self._before = None


def run(main: Callable[[], int | None]) -> int:
    """Call ``main()``; Ctrl-C prints one line and gives exit code 130 (128 + SIGINT), as a shell does."""
    try:
        return int(main() or 0)
    except KeyboardInterrupt:
        print(f"\n{os.path.basename(sys.argv[0])}: interrupted", file=sys.stderr)
        return 130
