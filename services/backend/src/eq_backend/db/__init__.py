"""Database access: table definitions, the engine, and the per-request connection helper."""
