"""The REST API (FastAPI): ``create_app`` in :mod:`courrier.api.app` builds it from settings."""
