"""Extensions, created unbound; create_app binds them."""
from __future__ import annotations

from typing import TYPE_CHECKING

import redis as redis_lib
from flask import Flask, current_app
from flask_babel import Babel
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect

from core.db import Base


class RedisClient:
    """One Redis connection pool per app, or None when REDIS_URL is not set."""

    def init_app(self, app: Flask) -> None:
        url = app.config.get("REDIS_URL")
        app.extensions["redis"] = redis_lib.Redis.from_url(url) if url else None

    @property
    def connection(self) -> redis_lib.Redis | None:
        return current_app.extensions.get("redis")


db = SQLAlchemy(model_class=Base)
if TYPE_CHECKING:
    # mypy cannot take an attribute (db.Model) as a base class; it sees the declarative base instead.
    Model = Base
else:
    # Base with Flask-SQLAlchemy's mixins (bind keys, table names); the same class as db.Model.
    Model = db.Model
migrate = Migrate()
csrf = CSRFProtect()
login_manager = LoginManager()
babel = Babel()
redis = RedisClient()
