"""Pure rules and typed objects; no I/O (see README.md)."""
