"""One module per CLI verb. Every module defines ``register(app: typer.Typer) -> None``;
``gsseg.cli.app`` discovers and registers them all."""
