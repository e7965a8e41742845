"""The whole schema: every table module (for Alembic) and the migrations that build it."""
