"""Alembic migration environment shipped inside the package (run by :func:`storage.migrate`)."""
