"""One module per `podium` command."""
