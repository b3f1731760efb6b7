"""`tune` subcommands, one module each, registered in :mod:`orchestrator.cli`."""
