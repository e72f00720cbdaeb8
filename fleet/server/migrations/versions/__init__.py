"""One Alembic revision per file (Alembic skips this __init__)."""
