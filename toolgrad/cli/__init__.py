"""toolgrad.cli.commands."""
