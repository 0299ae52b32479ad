"""The ``streamrec`` command line: one console script, a subcommand per capability."""
