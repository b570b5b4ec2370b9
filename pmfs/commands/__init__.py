"""One module per `pmfs` command; pmfs/cli.py dispatches.

Each command's options are a dataclass of `pmfs.options.option(...)` fields that is also its
parser (`pmfs.options.add_options`, `pmfs.options.options_from_args`).
"""
