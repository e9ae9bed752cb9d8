"""The two kinds of failure a user can act on, and their exit codes.

The CLI turns these into one-line messages; anything else is a bug and shows a
traceback only with ``--debug``.
"""


class XaiError(Exception):
    """A problem with the command line, model or config: nothing is written (exit 2)."""

    exit_code = 2


class InputError(XaiError):
    """A problem with one input: it is reported and skipped, the run goes on (exit 1)."""

    exit_code = 1
