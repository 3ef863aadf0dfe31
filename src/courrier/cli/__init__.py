"""The ``courrier`` command (Typer): serve, api, worker, migrate, tenant, demo."""
