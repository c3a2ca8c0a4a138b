"""CLI subcommands: each module defines `register(subparsers)`, adding its parser with a `func`.

`edgesnn.cli` imports every module here, so a new command is a new module.
"""
