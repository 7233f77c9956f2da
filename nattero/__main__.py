"""``python -m nattero``: the same command line as ``nattero``."""

from nattero.cli import main

main()
