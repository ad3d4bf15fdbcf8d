"""The executor's database: orders, fills and positions (SQLAlchemy 2, SQLite or PostgreSQL)."""
