"""Database access: engines for both backends, sessions, migrations."""

from node_api.db.engine import Database, async_url, backend_name, sync_url

__all__ = ["Database", "async_url", "backend_name", "sync_url"]
