"""The ``tabular-suite`` command line (installed as :mod:`tabular_suite.cli`)."""
