"""The application shell. create_app() is the table of contents."""
from __future__ import annotations

import logging
from importlib import import_module
from pathlib import Path

from flask import Flask

from core import config as config_module

ROOT = Path(__file__).resolve().parent.parent

# Feature packages, in dependency order; each exposes init_app(app).
FEATURES = ("organisation", "survey", "complaints")


def create_app(config=None) -> Flask:
    """Build the app. ``config`` is a Config class, its name, or a dict of overrides.

    A dict may carry ``INSTANCE_PATH`` to put the instance folder (SQLite file,
    per-install secret key) elsewhere than ``instance/`` in the checkout.
    """
    instance_path = config.get("INSTANCE_PATH") if isinstance(config, dict) else None
    app = Flask(
        __name__,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
        instance_path=str(instance_path or ROOT / "instance"),
    )
    configure(app, config)
    configure_logging(app)
    configure_extensions(app)
    configure_web(app)
    register_features(app)
    register_cli(app)
    return app


def configure(app: Flask, config) -> None:
    cls, overrides = config_module.resolve(config)
    app.config.from_object(cls)
    app.config.from_prefixed_env(config_module.ENV_PREFIX)
    app.config.update(overrides)
    app.config["INSTANCE_PATH"] = app.instance_path
    app.config["CONFIG_NAME"] = cls.__name__
    # Set last, from the class: no environment variable or override can say a production install is not one.
    app.config["IS_PRODUCTION"] = issubclass(cls, config_module.Production)
    cls.finalise(app.config)


def configure_logging(app: Flask) -> None:
    if not app.debug and not app.testing:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        logging.getLogger("alembic").setLevel(logging.WARNING)


def configure_extensions(app: Flask) -> None:
    from core import ratelimit, tasks
    from core.extensions import babel, csrf, db, login_manager, migrate, redis
    from core.i18n import select_locale

    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True)
    csrf.init_app(app)
    login_manager.init_app(app)
    babel.init_app(app, locale_selector=select_locale, default_translation_directories=str(ROOT / "translations"))
    redis.init_app(app)
    ratelimit.init_app(app)
    tasks.init_app(app)


def configure_web(app: Flask) -> None:
    from core import audit, enums, errors, health, i18n, inputs, security

    inputs.init_app(app)
    security.init_app(app)
    i18n.init_app(app)
    enums.init_app(app)
    audit.init_app(app)
    errors.init_app(app)
    app.register_blueprint(health.bp)


def register_features(app: Flask) -> None:
    for name in FEATURES:
        import_module(name).init_app(app)


def register_cli(app: Flask) -> None:
    from core import cli

    cli.init_app(app)
