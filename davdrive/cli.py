"""``davdrive``: the admin command line (click), a thin layer over ``build_app``.

``--config FILE`` and ``--data DIR`` are accepted before or after any command name; a value given
closer to the command wins. Errors print one line on stderr and exit with status 1; a data
directory that holds no store (and a second ``serve`` on a locked one) exits with status 2.
Only ``init`` and ``serve`` (on a first start) create a store (see ``davdrive.app``).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from davdrive import errors
from davdrive.app import App, StoreError, build_app, init_store, safe_url
from davdrive.config import ENV_MASTER_KEY, Config, load_config, parse_size
from davdrive.service.access import Perm, permission_names

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class State:
    """Options collected from every level of the command line."""

    config: str | None = None
    data: str | None = None


def _remember(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    if value is not None:
        setattr(ctx.ensure_object(State), param.name or "", value)
    return value


def common_options(f: F) -> F:
    """Add ``--config`` and ``--data`` to a group or command (not passed to the function)."""
    f = click.option(
        "--data",
        "data",
        metavar="DIR",
        envvar="DAVDRIVE_DATA",
        expose_value=False,
        callback=_remember,
        help="Data directory (default ./davdrive-data).",
    )(f)
    f = click.option(
        "--config",
        "config",
        metavar="FILE",
        envvar="DAVDRIVE_CONFIG",
        expose_value=False,
        callback=_remember,
        type=click.Path(dir_okay=False),
        help="YAML config file (see config/davdrive.yaml).",
    )(f)
    return f


class StoreProblem(click.ClickException):
    """No store where --data/--config point, or its data directory is busy: exit status 2."""

    exit_code = 2


def _config(**overrides: Any) -> Config:
    """The resolved config for this command's --config/--data (plus ``overrides``)."""
    state = click.get_current_context().ensure_object(State)
    return load_config(state.config, data_dir=state.data, **overrides)


@contextmanager
def _opened_app(config: Config | None = None, *, create: bool = False) -> Iterator[App]:
    """The app over an existing store (``create``: made if missing), closed afterwards."""
    app = build_app(config if config is not None else _config(), create=create)
    try:
        yield app
    finally:
        app.close()


def _size(value: int) -> str:
    for unit, mult in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if value >= mult:
            return f"{value / mult:.1f} {unit}"
    return f"{value} B"


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        password = line.rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if not password:
        raise click.ClickException("the password must not be empty")
    return password


class _Group(click.Group):
    """A group that turns library errors into one-line messages (no tracebacks)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except StoreError as exc:
            raise StoreProblem(str(exc)) from None
        except errors.DriveError as exc:
            raise click.ClickException(exc.message) from None
        except (OSError, ValueError, LookupError) as exc:
            raise click.ClickException(str(exc) or type(exc).__name__) from None
        except Exception as exc:  # noqa: BLE001 - last resort: one line, no traceback
            raise click.ClickException(f"{type(exc).__name__}: {exc}") from None


_Group.group_class = _Group


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@common_options
@click.version_option(package_name="davdrive")
def main() -> None:
    """davdrive: a self-hosted WebDAV file drive."""
    click.get_current_context().ensure_object(State)


@main.command()
@common_options
@click.option("--host", help="Address to bind (default 0.0.0.0).")
@click.option("--port", type=int, help="Port (default 8080).")
@click.option("--tls-cert", type=click.Path(dir_okay=False, exists=True), help="PEM certificate.")
@click.option("--tls-key", type=click.Path(dir_okay=False, exists=True), help="PEM private key.")
@click.option("--threads", type=click.IntRange(1, 1024), help="Worker threads (default 64).")
def serve(
    host: str | None,
    port: int | None,
    tls_cert: str | None,
    tls_key: str | None,
    threads: int | None,
) -> None:
    """Run the WebDAV + API server until SIGTERM/SIGINT (a first start creates the store)."""
    from davdrive.server.logs import configure_logging
    from davdrive.server.serve import DataDirBusy, lock_for
    from davdrive.server.serve import serve as run

    config = _config(host=host, port=port, tls_cert=tls_cert, tls_key=tls_key, threads=threads)
    configure_logging(config.log_level)
    try:
        lock = lock_for(config)  # held until the process ends
    except DataDirBusy as exc:
        raise StoreProblem(str(exc)) from None
    try:
        with _opened_app(config, create=True) as app:
            run(app)
    finally:
        if lock is not None:
            os.close(lock)


@main.command()
@common_options
def init() -> None:
    """Create a store (data directory, master key, metadata schema); a no-op if one exists."""
    config = _config()
    created = init_store(config)
    if not created:
        click.echo(f"a davdrive store already exists in {config.data_dir}; nothing changed")
        return
    click.echo(f"created a davdrive store in {config.data_dir}")
    click.echo(f"  metadata:   {safe_url(config.database_url)}")
    stores = config.blocks_url if isinstance(config.blocks_url, list) else [config.blocks_url]
    urls = [str(s.get("url")) if isinstance(s, dict) else str(s) for s in stores]  # no keys
    click.echo(f"  blocks:     {', '.join(urls)}")
    where = f"${ENV_MASTER_KEY}" if os.environ.get(ENV_MASTER_KEY) else config.master_key_file
    click.echo(f"  master key: {where} (back it up: without it no file can be read)")
    click.echo("next: `davdrive user add NAME --admin`, or `davdrive serve` (a first start with")
    click.echo("no users creates `admin` and prints its password)")


@main.command()
@common_options
@click.option("--host", default="0.0.0.0", show_default=True)
@click.option("--port", type=int, default=8081, show_default=True)
def notify(host: str, port: int) -> None:
    """Run the long-poll endpoint as a separate asyncio process (scale-out)."""
    from davdrive.server.notify_app import run_notify

    with _opened_app() as app:
        logging.basicConfig(level=app.config.log_level.upper(), stream=sys.stderr)
        run_notify(app, host, port)


# -- users ----------------------------------------------------------------------------------------
@main.group()
@common_options
def user() -> None:
    """Manage accounts."""


@user.command("add")
@common_options
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from one stdin line.")
@click.option("--quota", help="Quota, e.g. 10GB or 512MiB (default from the config).")
@click.option("--admin", is_flag=True, help="Make the account an administrator.")
def user_add(name: str, password_stdin: bool, quota: str | None, admin: bool) -> None:
    """Create an account."""
    quota_bytes = parse_size(quota) if quota is not None else None
    password = _read_password(password_stdin)
    with _opened_app() as app:
        p = app.accounts.add_user(name, password, quota=quota_bytes, admin=admin)
    click.echo(f"created user {p.login}" + (" (admin)" if admin else ""))


@user.command("list")
@common_options
def user_list() -> None:
    """List accounts with usage and quota."""
    with _opened_app() as app:
        users = app.accounts.list_users()
    click.echo(f"{'LOGIN':<24} {'ADMIN':<5} {'USED':>10} {'QUOTA':>10}")
    for u in users:
        admin = "yes" if u.is_admin else ""
        click.echo(f"{u.login:<24} {admin:<5} {_size(u.used):>10} {_size(u.quota):>10}")


@user.command("passwd")
@common_options
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from one stdin line.")
def user_passwd(name: str, password_stdin: bool) -> None:
    """Set an account's password."""
    password = _read_password(password_stdin)
    with _opened_app() as app:
        app.accounts.set_password(name, password)
    click.echo(f"password of {name} changed")


@user.command("quota")
@common_options
@click.argument("name")
@click.argument("size")
def user_quota(name: str, size: str) -> None:
    """Set an account's quota (10GB, 512MiB, bytes)."""
    quota = parse_size(size)
    with _opened_app() as app:
        app.accounts.set_quota(name, quota)
    click.echo(f"quota of {name}: {_size(quota)}")


@user.command("retention")
@common_options
@click.argument("name")
@click.option("--keep-all-days", type=float, help="Keep every version this many days.")
@click.option("--max-versions", type=int, help="Versions kept per file at most.")
@click.option("--history-share", type=float, help="History's share of the quota (0 to 1).")
@click.option("--trash-days", type=float, help="Days trash entries are kept.")
@click.option("--reset", is_flag=True, help="Drop this account's overrides first.")
def user_retention(name: str, reset: bool, **values: float | int | None) -> None:
    """Show or override an account's retention settings (docs/STORAGE.md "Retention")."""
    from davdrive.service.retention import account_retention, set_account_retention

    changes = {k: v for k, v in values.items() if v is not None}
    with _opened_app() as app:
        base = app.config.retention
        if changes or reset:
            overrides, settings = set_account_retention(app.drive, name, changes, base, reset=reset)
        else:
            overrides, settings = account_retention(app.drive, name, base)
    for key, value in vars(settings).items():
        source = "account" if key in overrides else "default"
        click.echo(f"{key:<14} {value:g} ({source})")


@user.command("delete")
@common_options
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def user_delete(name: str, yes: bool) -> None:
    """Delete an account and all its files."""
    if not yes:
        click.confirm(f"Delete user {name} and all their files?", abort=True)
    with _opened_app() as app:
        app.accounts.delete_user(name)
    click.echo(f"deleted user {name}")


# -- devices --------------------------------------------------------------------------------------
@main.group()
@common_options
def device() -> None:
    """Manage device credentials."""


@device.command("add")
@common_options
@click.argument("login")
@click.argument("name")
def device_add(login: str, name: str) -> None:
    """Create an app password and a token for a device (shown once)."""
    with _opened_app() as app:
        device_id, app_password, token = app.accounts.add_device(app.drive.principal(login), name)
    click.echo(f"device {device_id} ({name}) for {login}")
    click.echo(f"app password: {app_password}")
    click.echo(f"token: {token}")


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts)) if ts else "never"


@device.command("list")
@common_options
@click.argument("login", required=False)
def device_list(login: str | None) -> None:
    """List the devices of one account, or of all."""
    with _opened_app() as app:
        devices = app.accounts.list_devices(login)
    click.echo(
        f"{'ID':>6} {'LOGIN':<20} {'NAME':<24} {'CREATED':<16} {'LAST SEEN':<16} {'CURSOR':>8}"
    )
    for d in devices:
        click.echo(
            f"{d.id:>6} {d.login:<20} {d.name:<24} {_when(d.created):<16} "
            f"{_when(d.last_seen):<16} {d.last_cursor:>8}"
        )


@device.command("revoke")
@common_options
@click.argument("login")
@click.argument("device_name", metavar="DEVICE")
def device_revoke(login: str, device_name: str) -> None:
    """Delete a device (by name or numeric id): its app password and token stop working."""
    with _opened_app() as app:
        d = app.accounts.revoke_device(login, device_name)
    click.echo(f"revoked device {d.id} ({d.name}) of {d.login}")


# -- shares ---------------------------------------------------------------------------------------
@main.group()
@common_options
def share() -> None:
    """Audit user-to-user shares."""


@share.command("list")
@common_options
@click.argument("login", metavar="[USER]", required=False)
def share_list(login: str | None) -> None:
    """List every share, or those USER gave or received: id, owner, recipient, permissions,
    the owner's path -> the recipient's mount point."""
    with _opened_app() as app:
        shares = app.drive.shares.list_all(login)
    click.echo(f"{'ID':>6} {'OWNER':<20} {'RECIPIENT':<20} {'PERMISSIONS':<24} PATH -> MOUNT")
    for s in shares:
        names = ",".join(permission_names(Perm(s.permissions))) or "-"
        click.echo(
            f"{s.id:>6} {s.owner:<20} {s.recipient:<20} {names:<24} {s.path} -> {s.mount_path}"
        )


# -- share links ----------------------------------------------------------------------------------
_MAX_LINK_ID = (1 << 63) - 1  # ids live in a signed 64-bit column


def _link_status(info: Any) -> str:
    if info.revoked is not None:
        return "revoked"
    if info.expires is not None and info.expires <= time.time():
        return "expired"
    if info.max_uses is not None and info.uses >= info.max_uses:
        return "used-up"
    return "active"


@main.group()
@common_options
def link() -> None:
    """Audit and revoke share links."""


@link.command("list")
@common_options
@click.argument("login", metavar="[USER]", required=False)
def link_list(login: str | None) -> None:
    """List every share link, or those of USER: id, owner, type, status (active, revoked,
    expired, used-up), uses/maximum, the owner's path (``(trash)`` while in the trash), label."""
    with _opened_app() as app:
        links = app.drive.links.list_all(login)
    click.echo(f"{'ID':>6} {'OWNER':<20} {'TYPE':<6} {'STATUS':<8} {'USES':>9} PATH  LABEL")
    for info in links:
        uses = f"{info.uses}/{info.max_uses if info.max_uses is not None else '-'}"
        label = f"  {info.label}" if info.label else ""
        click.echo(
            f"{info.id:>6} {info.owner:<20} {info.kind:<6} {_link_status(info):<8} {uses:>9} "
            f"{info.path or '(trash)'}{label}"
        )


@link.command("revoke")
@common_options
@click.argument("link_id", metavar="ID", type=int)
def link_revoke(link_id: int) -> None:
    """Revoke a share link (any user's): its token stops working at once."""
    with _opened_app() as app:
        try:
            if not 0 < link_id <= _MAX_LINK_ID:
                raise errors.NotFound("no such link")
            app.drive.links.revoke(None, link_id)
        except errors.NotFound:
            raise click.ClickException(f"no link {link_id}") from None
    click.echo(f"revoked link {link_id}")


# -- maintenance ----------------------------------------------------------------------------------
@main.command()
@common_options
@click.option(
    "--repair",
    is_flag=True,
    help="Delete orphan objects (referenced by nothing) older than a day and crash leftovers "
    "(.tmp) older than an hour; mark missing or damaged blocks lost so the next upload of "
    "their files stores them again.",
)
@click.option("--no-verify", is_flag=True, help="Check presence only; do not decrypt blocks.")
def fsck(repair: bool, no_verify: bool) -> None:
    """Check stored blocks against the metadata; exit status 1 when damage is found."""
    with _opened_app() as app:
        report = app.drive.fsck(repair=repair, verify=not no_verify)
    click.echo(report.summary())
    for kind, keys in (("missing", report.missing), ("damaged", report.damaged)):
        for key in keys:
            block = report.block_ids.get(key, "?")
            click.echo(f"{kind}: {key} (block {block})")
            files = report.affected.get(key, [])
            for f in files:
                click.echo(f"    {f.describe()}")
            if not files:
                click.echo("    used by no file version")
    for key in report.leftovers:
        click.echo(f"crash leftover: {key}")
    if not report.ok:
        sys.exit(1)


@main.command()
@common_options
@click.option("--dry-run", is_flag=True, help="Verify and report; repair nothing.")
@click.option("--report", is_flag=True, help="Also name the files that use each lost block.")
@click.option("--rate", help="Bytes read per second, e.g. 20MB (default: the config's scrub.rate).")
def scrub(dry_run: bool, report: bool, rate: str | None) -> None:
    """Read every copy of every block, verify it against its id, repair bad copies from a good
    one (replicated stores); exit status 1 when a copy is still bad or a store unreachable."""
    from davdrive.service.scrub import scrub as run_scrub
    from davdrive.service.scrub import scrub_size

    with _opened_app() as app:
        limit = parse_size(rate) if rate is not None else app.config.scrub.get("rate")
        total = scrub_size(app.drive)
        with click.progressbar(length=total, label="verifying", file=sys.stderr) as bar:
            result = run_scrub(app.drive, rate=limit, dry_run=dry_run, on_block=bar.update)
    click.echo(result.summary())
    for copy in result.bad:
        click.echo(copy.describe())
    for store, why in sorted(result.unreachable.items()):
        click.echo(f"unreachable: {store}: {why}")
    if report:
        for key in result.lost:
            files = result.affected.get(key, [])
            click.echo(f"no good copy: {key}")
            for f in files:
                click.echo(f"    {f.describe()}")
            if not files:
                click.echo("    used by no file version")
    if not result.ok:
        sys.exit(1)


@main.command()
@common_options
@click.option("--dry-run", is_flag=True, help="Print what would go; change nothing.")
def prune(dry_run: bool) -> None:
    """Apply retention now: thin and cap file versions, purge expired trash entries (blocks
    nothing uses any more are left to `davdrive gc`). Prints a summary per account."""
    from davdrive.service.retention import prune as run_prune

    with _opened_app() as app:
        count = len(app.accounts.list_users())
        with click.progressbar(length=count, label="accounts", file=sys.stderr) as bar:
            report = run_prune(app, dry_run=dry_run, on_account=lambda _: bar.update(1))
    if dry_run:
        click.echo("dry run: nothing was changed")
    for a in report.accounts:
        if a.error is not None:
            click.echo(f"{a.login}: failed: {a.error}")
            continue
        p = a.plan
        click.echo(
            f"{a.login}: {a.versions_dropped} versions dropped (thinned {p.count('thinned')}, "
            f"over max_versions {p.count('max_versions')}, over history_share "
            f"{p.count('history_share')}), {a.trash_purged} trash entries purged, history "
            f"{_size(p.history_before)} -> {_size(p.history_after)} (cap "
            f"{_size(p.history_cap)}), {_size(p.released)} released for gc"
        )
        if dry_run:
            for v in a.versions:
                click.echo(
                    f"  drop {v.path} version {v.version_id} ({_when(v.created_at)}, {v.reason})"
                )
            for t in p.purged:
                click.echo(f"  purge {t.path} (trashed {_when(t.trashed_at)})")
    click.echo(
        f"total: {report.versions_dropped} versions dropped, {report.trash_purged} trash "
        f"entries purged, {_size(report.released)} released for gc"
    )
    if report.errors:
        sys.exit(1)


@main.command()
@common_options
@click.option("--dry-run", is_flag=True, help="Report what would be removed; remove nothing.")
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    help="Collect what has been unused this long (default: the config's gc_grace, a day).",
)
def gc(dry_run: bool, grace: float | None) -> None:
    """Delete block rows no version uses and objects nothing refers to, once unused for the
    grace period (safe while the server runs); print what was removed."""
    from davdrive.service.gc import execute_gc, plan_gc

    with _opened_app() as app:
        plan = plan_gc(app.drive, grace=app.config.gc_grace if grace is None else grace)
        if dry_run:
            report = plan.report()
        else:
            with click.progressbar(length=plan.items, label="sweeping", file=sys.stderr) as bar:
                report = execute_gc(app.drive, plan, progress=bar.update)
    click.echo(report.summary())
    click.echo(
        f"rows removed: {report.rows_removed}; objects removed: {report.objects_removed}; "
        f"{'would free' if dry_run else 'freed'}: {_size(report.bytes_freed)}"
    )


@main.command()
@common_options
@click.option("--dry-run", is_flag=True, help="Report what would move; move nothing.")
@click.option("--user", "login", metavar="LOGIN", help="With --path: the file's account.")
@click.option("--path", metavar="PATH", help="Archive this file now (every version).")
@click.option(
    "--restore",
    is_flag=True,
    help="With --user/--path: request a restore of the file's current version instead.",
)
def archive(dry_run: bool, login: str | None, path: str | None, restore: bool) -> None:
    """Move blocks that only old (neither current nor pinned) versions use, untouched for
    archive.after_days, to the cold tier (the config's archive section); with --user and
    --path, archive one file now. Prints a summary."""
    from davdrive.service.archive import (
        execute_archive,
        plan_archive,
        plan_file_archive,
        request_restore,
    )

    if bool(login) != bool(path):
        raise click.UsageError("--user and --path go together")
    if restore and not path:
        raise click.UsageError("--restore needs --user and --path")
    with _opened_app() as app:
        if not app.config.archive.enabled:
            raise click.ClickException(
                "archive is off: set archive.url or archive.storage_class in the config"
            )
        if restore:
            assert login is not None and path is not None
            click.echo(request_restore(app.drive, app.drive.principal(login), path).summary())
            return
        if login and path:
            plan = plan_file_archive(app.drive, app.drive.principal(login), path)
        else:
            plan = plan_archive(app.drive, after_days=app.config.archive.after_days)
        if dry_run:
            report = plan.report()
        else:
            with click.progressbar(length=plan.items, label="archiving", file=sys.stderr) as bar:
                report = execute_archive(app.drive, plan, progress=bar.update)
    if dry_run:
        click.echo("dry run: nothing was changed")
    click.echo(report.summary())
    for line in report.errors:
        click.echo(f"failed: {line}")
    if report.failed:
        sys.exit(1)


@main.command()
@common_options
@click.argument("name", required=False)
def usage(name: str | None) -> None:
    """Show space for one account or all: current files (what the quota counts), older
    versions, trash, what the blocks take in the store, the quota and what is left."""
    with _opened_app() as app:
        logins = [name] if name else [u.login for u in app.accounts.list_users()]
        rows = [app.drive.account_overview(app.drive.principal(login)) for login in logins]
    heads = ("CURRENT", "HISTORY", "TRASH", "STORED", "QUOTA", "AVAILABLE")
    click.echo(f"{'LOGIN':<24}" + "".join(f" {h:>10}" for h in heads))
    for a in rows:
        sizes = (a.used, a.history, a.trash, a.stored, a.quota, max(0, a.quota - a.used))
        click.echo(f"{a.login:<24}" + "".join(f" {_size(v):>10}" for v in sizes))


@main.group()
@common_options
def key() -> None:
    """Manage master keys."""


@key.command("rotate")
@common_options
def key_rotate() -> None:
    """Add a new master key and rewrap every account key under it (blocks stay as they are)."""
    with _opened_app() as app:
        new_id = app.keyring.rotate()
        count = app.drive.rewrap_keys()
    click.echo(f"new master key {new_id}; rewrapped {count} account key(s)")


if __name__ == "__main__":
    main()
