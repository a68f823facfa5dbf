"""Shared fixtures: real databases (SQLite and PostgreSQL) and outside tools.

Outside tools and services may be missing on a developer laptop: the test then skips with the
reason. Under ``CI=true`` a missing tool or service is a failure, never a skip.
"""

from __future__ import annotations

import os
import shutil
import uuid

import pytest

pytest_plugins = ["tests.live"]

PG_URL = os.environ.get("DAVDRIVE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(reason: str) -> None:
    """Skip on a laptop, fail under CI=true."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: a missing tool or service is a failure)")
    pytest.skip(reason)


def require_tool(name: str) -> str:
    """Path of an executable needed by a test (litmus, rclone, cadaver, ...)."""
    path = shutil.which(name)
    if path is None:
        unavailable(f"{name} is not installed (apt-get install {name})")
    return path  # type: ignore[return-value]


@pytest.fixture
def pg_url():
    """A PostgreSQL URL whose search_path is a fresh schema, dropped after the test."""
    try:
        import psycopg
    except ImportError:  # pragma: no cover
        unavailable("psycopg is not installed")
    base = PG_URL.replace("postgresql+psycopg://", "postgresql://")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    try:
        conn = psycopg.connect(base, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        unavailable(f"PostgreSQL is not reachable at {PG_URL}: {exc}")
    with conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """Every metadata test runs on SQLite (file, WAL) and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'meta.db'}"
    return request.getfixturevalue("pg_url")
