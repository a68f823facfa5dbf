"""``davdrive notify``: the long-poll endpoint as a small asyncio process (scale-out).

A reverse proxy mounts it at ``/api/v1/longpoll`` beside the main servers (as Nextcloud runs
notify_push beside PHP); each waiter is a suspended coroutine, not a thread, so one process
holds thousands. Wake-ups come from PostgreSQL LISTEN/NOTIFY when the bus is PostgreSQL, and
from a light poll of the accounts' journal heads in every setup (a missed notification costs at
most ``poll_interval``). Answers are the same as the main server's ``/api/v1/longpoll``.
aiohttp is used for HTTP: a well-kept asyncio server, rather than a hand-written parser.

``/metrics`` serves ``davdrive.metrics`` as the main server does (the ``metrics`` setting:
``off`` 404, ``public``, ``admin``): requests (door ``notify`` for the long-poll, ``other`` for
the rest), durations, bytes, and ``davdrive_longpolls_parked``, the polls waiting now.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client import generate_latest

from davdrive import errors, metrics
from davdrive.notify.postgres import _dsn, channel_for
from davdrive.service import access
from davdrive.service.auth import principal_from_header
from davdrive.service.changes import Changes

if TYPE_CHECKING:
    from davdrive.app import App

log = logging.getLogger(__name__)
MAX_TIMEOUT = 120
# The long-poll's two answers, rendered once (the bytes ``web.json_response`` gives).
ANSWER = {c: json.dumps({"changes": c}).encode() for c in (True, False)}
JSON = {"Content-Type": "application/json; charset=utf-8"}


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def count_request(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count the request into ``davdrive.metrics`` (as ``RequestMetrics`` does in ``serve``)."""
    started = time.perf_counter()
    door = "notify" if request.path == "/api/v1/longpoll" else "other"
    method = metrics.method_label(request.method)
    status = 500
    sent = 0
    try:
        resp = await handler(request)
        status, sent = resp.status, resp.content_length or 0
        return resp
    except web.HTTPException as exc:
        status = exc.status
        raise
    except asyncio.CancelledError:
        status = 499  # the client went away (or the server is stopping): not an error
        raise
    finally:
        series = metrics.http_series(door, method, str(status))
        series.record(time.perf_counter() - started, request.content_length or 0, sent)


class Waiters:
    """Futures of suspended long-polls per account, resolved when the journal passes them."""

    def __init__(self) -> None:
        self._by_account: dict[int, set[tuple[int, asyncio.Future[bool]]]] = defaultdict(set)

    def add(self, account: int, cursor: int) -> tuple[int, asyncio.Future[bool]]:
        item = (cursor, asyncio.get_running_loop().create_future())
        self._by_account[account].add(item)
        return item

    def remove(self, account: int, item: tuple[int, asyncio.Future[bool]]) -> None:
        waiters = self._by_account.get(account)
        if waiters is not None:
            waiters.discard(item)
            if not waiters:
                del self._by_account[account]

    def deliver(self, account: int, seq: int) -> None:
        for cursor, fut in list(self._by_account.get(account, ())):
            if seq > cursor and not fut.done():
                fut.set_result(True)

    def release_all(self) -> None:
        """Answer every parked poll now (shutdown); each still reports what the journal says."""
        for items in self._by_account.values():
            for _cursor, fut in items:
                if not fut.done():
                    fut.set_result(False)

    def has(self, account: int) -> bool:
        return account in self._by_account

    def accounts(self) -> list[int]:
        return list(self._by_account)

    def count(self) -> int:
        return sum(len(v) for v in self._by_account.values())


WAITERS: web.AppKey[Waiters] = web.AppKey("waiters", Waiters)


def make_notify_app(services: App, *, poll_interval: float = 1.0) -> web.Application:
    """The aiohttp app over ``services`` (a built ``davdrive.app.App``)."""
    waiters = Waiters()

    feed = Changes(services.drive)

    def heads(accounts: list[int]) -> list[tuple[int, int]]:
        return list(feed.heads(accounts).items())

    def head(account: int) -> int:
        return dict(heads([account])).get(account, 0)

    queued: dict[int, asyncio.Future[int]] = {}

    async def fresh_head(account: int) -> int:
        """The account's journal head, read after this call: callers share a query that has
        not started yet (a burst of NOTIFYs for one account costs one or two queries), never
        one already running, which may predate the commit being announced."""
        fut = queued.get(account)
        if fut is None:

            def run() -> int:
                queued.pop(account, None)  # started: later callers need a query of their own
                return head(account)

            fut = asyncio.get_running_loop().run_in_executor(None, run)
            queued[account] = fut
        return await asyncio.shield(fut)

    async def confirm(account: int) -> None:
        """A NOTIFY woke ``account``: the journal decides (a stray NOTIFY must not answer
        true), with one query for all its parked polls, before any of them is resumed."""
        try:
            waiters.deliver(account, await fresh_head(account))
        except Exception:  # noqa: BLE001 - the journal poll catches up within poll_interval
            log.exception("journal query after a notification failed")

    def authenticate(header: str, client: str | None) -> Any:
        return principal_from_header(services.accounts, header, client)

    def answer(changed: bool) -> web.Response:
        """One of the two pre-rendered answers (as ``json_response`` would render them)."""
        return web.Response(body=ANSWER[changed], headers=JSON)

    def fail(status: int, code: str, message: str) -> web.Response:
        resp = web.json_response({"error": {"code": code, "message": message}}, status=status)
        if status == 401:
            resp.headers["WWW-Authenticate"] = 'Basic realm="davdrive", charset="UTF-8"'
        return resp

    async def longpoll(request: web.Request) -> web.Response:
        loop = asyncio.get_running_loop()
        try:
            p = await loop.run_in_executor(
                None, authenticate, request.headers.get("Authorization", ""), request.remote
            )
        except errors.TooManyRequests as exc:
            return fail(429, exc.code, str(exc.message))
        except errors.DriveError as exc:
            return fail(401, exc.code, str(exc.message))
        try:
            cursor = int(request.query.get("cursor", ""))
            timeout = int(request.query.get("timeout", "30"))
            if cursor < 0 or not 1 <= timeout <= MAX_TIMEOUT:
                raise ValueError
        except ValueError:
            return fail(
                400, "bad_request", f"cursor must be a cursor, 1 <= timeout <= {MAX_TIMEOUT}"
            )
        account = access.grant(p).owner_id  # the access rule, like every door
        item = waiters.add(account, cursor)
        metrics.LONGPOLLS_PARKED.inc()
        try:
            if await loop.run_in_executor(None, head, account) > cursor:
                return answer(True)
            with contextlib.suppress(TimeoutError):
                # Resolved True only from a journal head read after the commit (``confirm``
                # and the poll): the answer needs no query of its own.
                if await asyncio.wait_for(asyncio.shield(item[1]), timeout):
                    return answer(True)
            # Timeout or shutdown: the journal decides.
            return answer(await loop.run_in_executor(None, head, account) > cursor)
        finally:
            waiters.remove(account, item)
            metrics.LONGPOLLS_PARKED.dec()

    async def healthz(_request: web.Request) -> web.Response:
        return web.Response(text=f"ok {waiters.count()} waiting\n")

    mode = getattr(services.config, "metrics", "off")
    registry = metrics.app_registry()

    async def metrics_page(request: web.Request) -> web.Response:
        if mode not in ("public", "admin"):
            raise web.HTTPNotFound()
        if mode == "admin":
            loop = asyncio.get_running_loop()
            try:
                p = await loop.run_in_executor(
                    None, authenticate, request.headers.get("Authorization", ""), request.remote
                )
            except errors.TooManyRequests as exc:
                return fail(429, exc.code, str(exc.message))
            except errors.DriveError as exc:
                return fail(401, exc.code, str(exc.message))
            if not p.is_admin:
                return fail(403, "permission_denied", "admin accounts only")
        return web.Response(
            body=generate_latest(registry),
            headers={"Content-Type": metrics.CONTENT_TYPE, "Cache-Control": "no-store"},
        )

    async def poller(app: web.Application) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(poll_interval)
            accounts = waiters.accounts()
            if not accounts:
                continue
            try:
                for account, seq in await loop.run_in_executor(None, heads, accounts):
                    waiters.deliver(account, seq)
            except Exception:  # noqa: BLE001 - keep serving; the next round retries
                log.exception("journal poll failed")

    confirmations: set[asyncio.Task[None]] = set()

    async def listener(app: web.Application) -> None:
        import psycopg

        dsn = _dsn(services.config.database_url)
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
                    cur = await conn.execute("SELECT current_database(), current_schema()")
                    database, schema = await cur.fetchone()
                    await conn.execute(f"LISTEN {channel_for(database, schema)}")
                    async for note in conn.notifies():
                        account = int(note.payload.partition(":")[0])
                        if waiters.has(account):
                            task = asyncio.create_task(confirm(account))
                            confirmations.add(task)
                            task.add_done_callback(confirmations.discard)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001
                log.exception("LISTEN connection lost; retrying in 1 s")
                await asyncio.sleep(1)

    async def background(app: web.Application):  # noqa: ANN202 - aiohttp cleanup context
        tasks = [asyncio.create_task(poller(app))]
        if services.config.database_url.startswith("postgresql"):
            tasks.append(asyncio.create_task(listener(app)))
        yield
        for t in tasks:
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await t

    async def release(_app: web.Application) -> None:
        waiters.release_all()

    app = web.Application(middlewares=[count_request])
    app[WAITERS] = waiters
    app.on_shutdown.append(release)  # SIGTERM answers parked polls instead of waiting them out
    app.router.add_get("/api/v1/longpoll", longpoll)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_page)
    app.cleanup_ctx.append(background)
    return app


def run_notify(services: App, host: str, port: int) -> None:
    """Serve until SIGTERM/SIGINT."""
    web.run_app(
        make_notify_app(services),
        host=host,
        port=port,
        access_log=None,
        shutdown_timeout=5,
        print=lambda *a: log.info(*a),
    )
