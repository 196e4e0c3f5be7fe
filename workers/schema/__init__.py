"""Each component's schema history (Alembic, one per component) and the start-up check that a
database is not behind the code that opens it."""
