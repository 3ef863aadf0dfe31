"""The engine: intake (event to planned messages), the dispatcher and its worker process."""
