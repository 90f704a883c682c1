"""One line for a person from an error of the command-line tools: the trainer, `trainers.evaluate`, `trainers.sample`."""


def one_line(error):
    """An OSError as its cause and file (``No space left on device: 'path'.``); anything else as its message on one line."""
    if isinstance(error, OSError) and error.strerror and error.filename:
        return f"{error.strerror}: {str(error.filename)!r}."
    return " ".join(str(error).split())
