"""One line for a person from an error of the command-line tools: the trainer, `trainers.evaluate`, `trainers.sample`, `trainers.report`."""

import argparse
import os
import signal
import sys
import warnings


def one_line(error):
    """An OSError as its cause and file (``No space left on device: 'path'.``); anything else as its message on one line."""
    if isinstance(error, OSError) and error.strerror and error.filename:
        return f"{error.strerror}: {str(error.filename)!r}."
    return " ".join(str(error).split())


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one ``prog: error: ...`` line (status 2), not the usage block and a line."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {one_line(message)} (see --help)\n")


def command(parser, work):
    """``work()``'s result; an OSError or ValueError ends the program with one ``error:`` line and status 2,
    Ctrl-C with ``interrupted.`` and status 130, never a traceback. Warnings meanwhile show as one
    ``prog: warning: ...`` line each, not Python's two (the file and line, then the source)."""
    shown = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        print(f"{parser.prog}: warning: {one_line(message)}", file=sys.stderr if file is None else file)

    warnings.showwarning = show
    try:
        return work()
    except (OSError, ValueError) as error:
        parser.exit(2, f"{parser.prog}: error: {one_line(error)}\n")
    except KeyboardInterrupt:
        parser.exit(128 + signal.SIGINT, f"{parser.prog}: interrupted.\n")
    finally:
        warnings.showwarning = shown


def interrupt_in_one_line(prog):
    """Ctrl-C at any moment of a command ends with ``prog: interrupted.`` and status 130, never a traceback.

    While the command's modules import (until its ``__main__`` defines ``main``), Ctrl-C exits at once: a
    KeyboardInterrupt raised inside a library's import can be swallowed there and leave it half-initialised (numpy
    once ended in an AttributeError traceback that way), and nothing is written yet that could be lost. After, it
    raises KeyboardInterrupt as usual for the command's own handling; one that nothing catches prints the same line.
    Call it from a command's ``__main__`` before its heavy imports; other exceptions keep the usual traceback.
    """
    shown = sys.excepthook

    def show(kind, error, traceback):
        if issubclass(kind, KeyboardInterrupt):
            print(f"{prog}: interrupted.", file=sys.stderr)
        else:
            shown(kind, error, traceback)

    def starting(signum, frame):
        if "main" in vars(sys.modules["__main__"]):
            raise KeyboardInterrupt
        print(f"{prog}: interrupted.", file=sys.stderr, flush=True)
        os._exit(128 + signal.SIGINT)

    sys.excepthook = show
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not where Ctrl-C is ignored (a background job)
        signal.signal(signal.SIGINT, starting)
