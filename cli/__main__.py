"""`python -m tabular_suite.cli`: the command line (as the `tabular-suite` script)."""

from .app import main

main()
