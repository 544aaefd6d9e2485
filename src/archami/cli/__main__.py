"""`python -m archami.cli`: the same entry point as the `archami` script."""

from archami.cli import main

main()
