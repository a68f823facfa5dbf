"""SQL metadata: SQLAlchemy 2.x typed ORM, one schema on SQLite and PostgreSQL (DESIGN.md §3)."""
