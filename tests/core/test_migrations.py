"""Migrations: one head, and the models match what `flask db upgrade` builds on both backends."""
from __future__ import annotations

import flask_migrate
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect

from core import ROOT
from core.extensions import db

MIGRATIONS = ROOT / "migrations"


def schema_differences(connection) -> list:
    context = MigrationContext.configure(connection, opts={"compare_type": True, "render_as_batch": True})
    return compare_metadata(context, db.metadata)


def head_revision() -> str:
    (head,) = ScriptDirectory(str(MIGRATIONS)).get_heads()
    return head


def test_migrations_have_exactly_one_head():
    heads = ScriptDirectory(str(MIGRATIONS)).get_heads()
    assert len(heads) == 1, f"several heads, merge them: {heads}"


@pytest.mark.real_engine
def test_models_match_the_migrations_on_postgresql(app, database_url):
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            assert schema_differences(connection) == []
    finally:
        engine.dispose()


@pytest.fixture
def sqlite_app(make_app, tmp_path):
    return make_app("development", INSTANCE_PATH=str(tmp_path / "install"))


def table_names(app) -> set[str]:
    with app.app_context():
        return set(inspect(db.engine).get_table_names())


def test_models_match_the_migrations_on_sqlite(sqlite_app):
    with sqlite_app.app_context():
        flask_migrate.upgrade()
        with db.engine.connect() as connection:
            assert schema_differences(connection) == []


def test_sqlite_upgrade_downgrade_to_base_and_upgrade_again(sqlite_app):
    model_tables = set(db.metadata.tables)
    with sqlite_app.app_context():
        flask_migrate.upgrade()
    assert table_names(sqlite_app) == model_tables | {"alembic_version"}

    with sqlite_app.app_context():
        flask_migrate.downgrade(revision="base")
    assert table_names(sqlite_app) <= {"alembic_version"}

    with sqlite_app.app_context():
        flask_migrate.upgrade()
        with db.engine.connect() as connection:
            assert MigrationContext.configure(connection).get_current_revision() == head_revision()
    assert table_names(sqlite_app) == model_tables | {"alembic_version"}
