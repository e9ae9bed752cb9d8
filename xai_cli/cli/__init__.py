"""The command line: parses options and delegates; errors become messages and exit codes.

:mod:`.commands` has one function per command, :mod:`.options` the options several
commands share, :mod:`.running` what every command does around its job (import it, pick
the device, show progress, turn errors into exit codes).
"""

from .commands import main

__all__ = ["main"]
