"""The subcommands of ``memrl``, one module each (named as the command).

Each module has ``add_parser(subparsers)``, which adds the command's parser and sets its handler
as the ``func`` default; :data:`memrl.cli.COMMANDS` lists them. Heavy modules are imported inside
the handlers, so that ``memrl --help`` answers at once.
"""
