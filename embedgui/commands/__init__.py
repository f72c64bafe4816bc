"""One module per subcommand of `python -m embedgui`; each has add_arguments(parser) and run(args) -> int."""
