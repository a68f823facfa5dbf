"""``davdrive-sync``: init, once, run, status.

argparse (standard library) keeps the client light: it needs nothing of the server package
but ``davdrive.protocol``.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import getpass
import logging
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from davdrive_sync import engine as engine_mod
from davdrive_sync.remote import AuthError, NotFound, Remote, RemoteError
from davdrive_sync.signals import Stop, stop_on_signals
from davdrive_sync.state import (
    Config,
    NotInitialized,
    State,
    load_config,
    meta_dir,
    save_config,
)

log = logging.getLogger("davdrive_sync")

EXIT_OK, EXIT_ERROR, EXIT_GUARD, EXIT_USAGE = 0, 1, 3, 2


class Busy(Exception):
    """Another davdrive-sync process holds the folder."""


@contextlib.contextmanager
def folder_lock(local: Path) -> Iterator[None]:
    """One client per folder (``.davdrive-sync/lock``, released by the kernel on any exit)."""
    path = meta_dir(local) / "lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise Busy(f"another davdrive-sync is working on {local}") from exc
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)


def make_remote(cfg: Config, secret: str) -> Remote:
    if cfg.auth == "token":
        return Remote(cfg.url, cfg.user, token=secret)
    return Remote(cfg.url, cfg.user, password=secret)


def open_engine(
    local: Path,
    *,
    force: bool = False,
    progress: bool = False,
    confirm: Callable[[str], bool] | None = None,
) -> engine_mod.Engine:
    cfg, secret = load_config(local)
    return engine_mod.Engine(
        local,
        cfg,
        make_remote(cfg, secret),
        State(local),
        force=force,
        progress=progress,
        confirm=confirm,
    )


def ask_on_terminal(question: str) -> bool:
    """The delete guard's question on the terminal (``once`` run by a person): only an
    explicit yes proceeds; end of input or anything else keeps the files."""
    try:
        answer = input(f"{question}. Delete them? [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


# -- commands ---------------------------------------------------------------------------------
def cmd_init(args: argparse.Namespace) -> int:
    local = Path(args.local_dir).resolve()
    local.mkdir(parents=True, exist_ok=True)
    if (meta_dir(local) / "config.json").exists() and not args.reinit:
        print(f"{local} is already set up (use --reinit to replace its settings)", file=sys.stderr)
        return EXIT_USAGE
    if args.token:
        secret, auth = args.token, "token"
    elif args.password_stdin:
        secret, auth = sys.stdin.readline().rstrip("\r\n"), "password"
    else:
        secret, auth = getpass.getpass(f"app password for {args.user}: "), "password"
    if not secret:
        print("no password given", file=sys.stderr)
        return EXIT_USAGE
    remote_path = "/" + args.remote_path.strip("/")
    cfg = Config(
        url=args.url.rstrip("/"),
        user=args.user,
        remote_path=remote_path,
        device=args.device or socket.gethostname(),
        auth=auth,
    )
    remote = make_remote(cfg, secret)
    try:
        remote.account()
        remote.check_protocol()
        if remote_path != "/":
            meta = remote.metadata(remote_path)
            if meta is None:
                remote.create_folder(remote_path)
            elif not meta["is_dir"]:
                print(f"{remote_path} on the server is a file", file=sys.stderr)
                return EXIT_ERROR
    except AuthError:
        print(f"the server refused the credentials of {args.user}", file=sys.stderr)
        return EXIT_ERROR
    except RemoteError as exc:
        print(f"cannot use {args.url}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    save_config(local, cfg, secret)
    State(local).close()
    print(f"{local} will sync with {cfg.url} ({cfg.user}:{remote_path}) as device {cfg.device}")
    print("run `davdrive-sync once` for one pass or `davdrive-sync run` to keep it in sync")
    return EXIT_OK


def _stopped(eng: engine_mod.Engine) -> None:
    """After a ``Stop``, with the folder lock still held: no temp file stays behind."""
    with contextlib.suppress(OSError):
        eng.clean_tmp()
    eng.state.close()  # rolls back a state change the signal cut short


def cmd_once(args: argparse.Namespace) -> int:
    local = Path(args.local_dir).resolve()
    progress = args.progress if args.progress is not None else sys.stderr.isatty()
    progress = progress and not args.quiet
    # A person at a terminal is asked at the delete guard; a script or a service is not.
    asks = sys.stdin.isatty() and sys.stderr.isatty() and not args.quiet
    eng = open_engine(
        local, force=args.force, progress=progress, confirm=ask_on_terminal if asks else None
    )
    with stop_on_signals(eng.remote), folder_lock(local):
        try:
            stats = eng.sync()
        except Stop:
            _stopped(eng)
            raise
    for c in stats.conflicts:
        print(f"conflict: local version kept as {c}", file=sys.stderr)
    if not args.quiet:
        print(f"in sync: {stats.summary()}")
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    local = Path(args.local_dir).resolve()
    cfg, _ = load_config(local)
    st = State(local)
    files, dirs = st.counts()
    last = st.get("last_pass")
    print(f"folder:   {local}")
    print(f"server:   {cfg.url} as {cfg.user} (device {cfg.device}, {cfg.auth})")
    print(f"remote:   {cfg.remote_path}")
    print(f"synced:   {files} files, {dirs} folders")
    print(f"cursor:   {st.get('cursor') or '(never synced)'}")
    if last:
        when, _, summary = last.partition(" ")
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(when)))
        print(f"last:     {stamp}: {summary}")
    else:
        print("last:     never")
    try:
        with folder_lock(local):
            running = False
    except Busy:
        running = True
    print(f"running:  {'yes' if running else 'no'}")
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from davdrive_sync.watcher import run_forever

    local = Path(args.local_dir).resolve()
    eng = open_engine(local, force=args.force)
    cfg, secret = load_config(local)
    poll = make_remote(cfg, secret)
    with stop_on_signals(eng.remote, poll), folder_lock(local):
        try:
            run_forever(eng, poll, debounce=args.debounce, interval=args.interval)
        except Stop:
            _stopped(eng)
            raise
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="davdrive-sync", description="davdrive delta-sync client")
    p.add_argument("-v", "--verbose", action="count", default=0)
    sub = p.add_subparsers(dest="command", required=True)

    i = sub.add_parser("init", help="set up a folder to sync with a server")
    i.add_argument("local_dir", metavar="LOCAL_DIR")
    i.add_argument("url", metavar="URL", help="the server's base URL (https://host:port)")
    i.add_argument("--user", required=True)
    i.add_argument("--remote-path", default="/", help="folder on the server (default: all)")
    i.add_argument("--device", help="this device's name in conflicted copies (default: host)")
    g = i.add_mutually_exclusive_group()
    g.add_argument("--password-stdin", action="store_true", help="read the app password")
    g.add_argument("--token", help="a device bearer token instead of an app password")
    i.add_argument("--reinit", action="store_true", help=argparse.SUPPRESS)
    i.set_defaults(func=cmd_init)

    o = sub.add_parser("once", help="one full sync pass")
    o.add_argument("local_dir", metavar="LOCAL_DIR", nargs="?", default=".")
    o.add_argument(
        "--force",
        action="store_true",
        help="proceed past the delete guard (on a terminal, once asks instead of stopping)",
    )
    o.add_argument("-q", "--quiet", action="store_true")
    o.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bars for transfers of 8 MiB or more (default: when stderr is a terminal)",
    )
    o.set_defaults(func=cmd_once)

    s = sub.add_parser("status", help="show the folder's sync settings and state")
    s.add_argument("local_dir", metavar="LOCAL_DIR", nargs="?", default=".")
    s.set_defaults(func=cmd_status)

    r = sub.add_parser("run", help="keep the folder in sync (watcher + long-poll)")
    r.add_argument("local_dir", metavar="LOCAL_DIR", nargs="?", default=".")
    r.add_argument("--force", action="store_true", help="proceed past the delete guard")
    r.add_argument("--debounce", type=float, default=1.0, help="seconds of quiet before a pass")
    r.add_argument("--interval", type=float, default=300.0, help="a full pass at least this often")
    r.set_defaults(func=cmd_run)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    quiet_run = args.command == "run" and not args.verbose
    level = logging.DEBUG if args.verbose > 1 else logging.INFO
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr)
    if quiet_run:
        # `run` says one line per pass that did something; `-v` shows every action
        logging.getLogger("davdrive_sync").setLevel(logging.WARNING)
        logging.getLogger("davdrive_sync.watcher").setLevel(logging.INFO)
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    try:
        return args.func(args)
    except NotInitialized as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    except engine_mod.GuardTripped as exc:
        print(f"stopped: {exc}", file=sys.stderr)
        return EXIT_GUARD
    except (engine_mod.SyncError, Busy) as exc:
        print(f"not in sync: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except AuthError as exc:
        print(f"the server refused the credentials: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except NotFound as exc:
        print(f"not found on the server: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except RemoteError as exc:
        print(f"not in sync: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except Stop as stop:
        if args.command == "run":  # how `run` ends: stopped cleanly is a success
            print(f"stopped ({stop.name}); the next start carries on", file=sys.stderr)
            return EXIT_OK
        print(f"interrupted ({stop.name}): not in sync; run again", file=sys.stderr)
        return 128 + stop.signum
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
