"""Command-line entry points: users, the worker, storage set-up."""
import click
from flask import current_app
from flask.cli import AppGroup

from webapp.services.errors import ServiceError

users = AppGroup("users", help="Manage accounts.")
storage_cli = AppGroup("storage", help="Object storage set-up.")


@users.command("create")
@click.argument("email")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--admin", is_flag=True, help="Give the account the admin role.")
def create_user_command(email, password, admin):
    """Create an account."""
    from webapp.services.accounts import create_user

    try:
        user = create_user(email, password, is_admin=admin)
    except ServiceError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"created {user.email}{' (admin)' if admin else ''}")


@users.command("promote")
@click.argument("email")
def promote_user_command(email):
    """Give an existing account the admin role."""
    from webapp.services.accounts import set_admin

    try:
        user = set_admin(email, True)
    except ServiceError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"{user.email} is now an admin")


@storage_cli.command("setup")
@click.option("--origin", "origins", multiple=True, default=["http://127.0.0.1:5000",
                                                              "http://localhost:5000"],
              help="Browser origin allowed to PUT uploads (repeatable).")
def storage_setup_command(origins):
    """Create the bucket if needed and set its CORS rules for browser uploads."""
    from webapp.storage import get_storage

    get_storage().ensure_bucket(origins)
    click.echo(f"bucket {current_app.config['S3_BUCKET']} ready for {', '.join(origins)}")


@click.command("worker")
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
@click.option("--scheduler/--no-scheduler", default=True, help="Also run RQ's scheduler.")
def worker_command(burst, scheduler):
    """Run an RQ worker for Satchel's queues inside the app context."""
    from webapp.worker import run_worker

    run_worker(burst=burst, with_scheduler=scheduler)


def register(app):
    """Attach the commands to app."""
    app.cli.add_command(users)
    app.cli.add_command(storage_cli)
    app.cli.add_command(worker_command)
