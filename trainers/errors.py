"""One line for a person from an error of the command-line tools: the trainer, `trainers.evaluate`, `trainers.sample`, `trainers.report`."""

import signal


def one_line(error):
    """An OSError as its cause and file (``No space left on device: 'path'.``); anything else as its message on one line."""
    if isinstance(error, OSError) and error.strerror and error.filename:
        return f"{error.strerror}: {str(error.filename)!r}."
    return " ".join(str(error).split())


def command(parser, work):
    """``work()``'s result; an OSError or ValueError ends the program with one ``error:`` line and status 2,
    Ctrl-C with ``interrupted.`` and status 130, never a traceback."""
    try:
        return work()
    except (OSError, ValueError) as error:
        parser.exit(2, f"{parser.prog}: error: {one_line(error)}\n")
    except KeyboardInterrupt:
        parser.exit(128 + signal.SIGINT, f"{parser.prog}: interrupted.\n")
