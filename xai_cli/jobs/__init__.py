"""What each command does: explain, evaluate, spray, tune, bench, rules.

A job module is imported when its command runs (the CLI's ``--help`` stays free of
Keras). Jobs use the engine through :mod:`xai_cli.session`, read and write through
:mod:`xai_cli.io`, and never call back into the CLI.
"""
