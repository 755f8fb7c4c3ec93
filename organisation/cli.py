"""flask seed-demo and flask create-admin."""
from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from core.extensions import db
from organisation import demo, services
from organisation.models import Role
from organisation.passwords import is_published, password_problems


@click.command("seed-demo")
@click.option("--password", default=None, help="Password for every demo account (default: a fixed demo password).")
@click.option("--allow-production", is_flag=True,
              help="Load the demo under the production configuration (a public demo site); needs --password.")
@with_appcontext
def seed_demo_command(password: str | None, allow_production: bool) -> None:
    """Load a demo region, institutions, departments, touchpoints and staff (once)."""
    if current_app.config.get("IS_PRODUCTION"):
        if not allow_production:
            raise click.ClickException(
                "Refusing to load the demo under the production configuration (TINGJIAN_CONFIG=production): it "
                "adds a fictional region and 17 accounts with a published password. For a public demo site, pass "
                "--allow-production with --password set to a password of your own.")
        if not password or is_published(password):
            raise click.ClickException("--allow-production needs --password with a password of your own, "
                                       "not the published demo password.")
        problems = password_problems(password)
        if problems:
            raise click.ClickException(" ".join(problems))
    if demo.is_loaded():
        click.echo("The demo data is already loaded; nothing to do.")
        return
    accounts = demo.seed(password or demo.DEMO_PASSWORD)
    for seeder in current_app.extensions.get("demo_seeders", []):
        seeder()
    db.session.commit()
    click.echo("Demo loaded. Accounts (password for all: %s):" % (password or demo.DEMO_PASSWORD))
    for username, role, where in accounts:
        click.echo(f"  {username:<22} {role:<28} {where}")


@click.command("create-admin")
@click.argument("username")
@click.option("--name", "display_name", default="平台管理员", show_default=True)
@click.password_option(prompt="Password (empty: generate one)", default="", show_default=False)
@with_appcontext
def create_admin_command(username: str, display_name: str, password: str) -> None:
    """Create a platform admin who must change the password at first login."""
    if password and current_app.config.get("IS_PRODUCTION") and is_published(password):
        raise click.ClickException("Refusing a published password (the demo password) under the production "
                                   "configuration: choose another, or press Enter twice to have one generated.")
    if password:
        problems = password_problems(password, username=username, display_name=display_name)
        if problems:
            raise click.ClickException(" ".join(problems))
    try:
        user, initial = services.create_staff(username=username, display_name=display_name,
                                              roles=[Role.PLATFORM_ADMIN], password=password or None,
                                              actor="cli")
    except services.ServiceError as exc:
        raise click.ClickException(str(exc)) from None
    db.session.commit()
    click.echo(f"Platform admin {user.username} created.")
    if not password:
        click.echo(f"Initial password (change at first login): {initial}")


def init_app(app: Flask) -> None:
    app.cli.add_command(seed_demo_command)
    app.cli.add_command(create_admin_command)
