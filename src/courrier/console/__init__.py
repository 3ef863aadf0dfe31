"""The staff console (server-rendered). For now: the captured-mail page of local capture."""
