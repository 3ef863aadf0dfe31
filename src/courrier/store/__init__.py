"""Storage: schema, migrations and queries, on SQLite and PostgreSQL."""
