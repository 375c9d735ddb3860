"""Command-line entry points: users, the worker, storage set-up, the scanner check."""

import click
from flask import current_app
from flask.cli import AppGroup

from webapp.services.refusals import ServiceError

users = AppGroup("users", help="Manage accounts.")
storage_cli = AppGroup("storage", help="Object storage set-up.")
scanner_cli = AppGroup("scanner", help="The virus scanner (clamd).")


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


_ORIGINS = click.option(
    "--origin",
    "origins",
    multiple=True,
    default=["http://127.0.0.1:5000", "http://localhost:5000"],
    help="Browser origin allowed to PUT uploads (repeatable).",
)


@storage_cli.command("apply")
@_ORIGINS
def storage_apply_command(origins):
    """Create the bucket if needed and set what it needs: Block Public Access, CORS, lifecycle."""
    from webapp.storage import get_storage

    get_storage().ensure_bucket(origins)
    click.echo(
        f"bucket {current_app.config['S3_BUCKET']}: private, PUT from {', '.join(origins)}, "
        "incomplete multipart uploads aborted after 1 day, incoming/ expired after 2 days"
    )


@storage_cli.command("check")
@_ORIGINS
def storage_check_command(origins):
    """Report whether the bucket and the URL lifetimes are as Satchel needs them (exit 1 if not)."""
    from webapp.storage import check_settings, get_storage

    problems = check_settings(get_storage().read_settings(), origins)
    config = current_app.config
    if config["UPLOAD_URL_TTL"] > 900:
        problems.append(f"UPLOAD_URL_TTL is {config['UPLOAD_URL_TTL']} s; upload URLs must expire within 15 minutes")
    if config["DOWNLOAD_URL_TTL"] > 300:
        problems.append(
            f"DOWNLOAD_URL_TTL is {config['DOWNLOAD_URL_TTL']} s; download URLs must expire within 5 minutes"
        )
    for problem in problems:
        click.echo(f"FAIL  {problem}")
    if problems:
        raise click.exceptions.Exit(1)
    click.echo(
        f"OK    bucket {config['S3_BUCKET']}: Block Public Access on, CORS PUT-only for "
        f"{', '.join(origins)} with ETag exposed, lifecycle rules present, URL lifetimes within limits"
    )


@scanner_cli.command("check")
def scanner_check_command():
    """Prove clamd reads a file of SCANNER_MAX_BYTES whole: it must find EICAR at the end of a
    padded ZIP of that size, and report EICAR or a limit alert for EICAR nested past its recursion
    limit (exit 1 if not). The outcome is recorded for the admin dashboard."""
    from webapp.services.scanner_check import check_scanner

    check = check_scanner()
    click.echo(
        f"{'OK  ' if check.ok else 'FAIL'}  clamd answered {check.reply!r} for a ZIP of "
        f"{check.max_bytes} bytes (EICAR after a filler entry) in {check.seconds:.1f} s"
    )
    if check.version:
        click.echo(f"      {check.version}")
    if not check.ok:
        click.echo(
            "      clamd must read files of this size whole: give it StreamMaxLength, MaxFileSize and "
            "MaxScanSize to match and AlertExceedsMax yes, and CLAMD_TIMEOUT room for the scan, "
            "or lower SCANNER_MAX_BYTES",
            err=True,
        )
        raise click.exceptions.Exit(1)


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
    app.cli.add_command(scanner_cli)
    app.cli.add_command(worker_command)
