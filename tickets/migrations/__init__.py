"""Alembic migrations of the ticket database, run programmatically by `tickets.db.migrate`."""
