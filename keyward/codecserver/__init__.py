"""The remote codec server: Temporal's codec protocol over HTTP for the Web UI and CLI."""
