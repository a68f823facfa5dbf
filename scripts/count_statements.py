"""SQL statements (and, with ``--cpu``, CPU time) per WebDAV request, in-process: a werkzeug
test client over the full WSGI app on a fresh embedded store. The statement counts are
deterministic; the CPU times (best of three loops, no network, no threads) vary by a few
percent between runs. Usage: python scripts/count_statements.py [--cpu]"""

from __future__ import annotations

import base64
import sys
import tempfile
import time
from collections.abc import Callable

from sqlalchemy import event
from werkzeug.test import Client

from davdrive.app import build_app
from davdrive.config import load_config
from davdrive.server.wsgi import make_wsgi_app


def main() -> None:
    app = build_app(load_config(None, data_dir=tempfile.mkdtemp()), create=True)
    app.accounts.add_user("alice", "pw")
    client = Client(make_wsgi_app(app))
    auth = {"Authorization": "Basic " + base64.b64encode(b"alice:pw").decode()}
    count = {"n": 0}

    def seen(*_args: object, **_kwargs: object) -> None:
        count["n"] += 1

    event.listen(app.db.engine, "before_cursor_execute", seen)
    for i in range(3):  # warm caches (credentials, keys, prepared statements)
        client.put(f"/dav/alice/warm{i}.txt", data=b"x" * 4096, headers=auth)

    def measure(label: str, call: Callable[[], object]) -> None:
        count["n"] = 0
        response = call()
        print(f"{label:24s} {getattr(response, 'status_code', '?')}  {count['n']} statements")

    measure("PUT new 4 KiB", lambda: client.put("/dav/alice/f.txt", data=b"y" * 4096, headers=auth))
    measure(
        "PUT overwrite 4 KiB",
        lambda: client.put("/dav/alice/f.txt", data=b"z" * 4096, headers=auth),
    )
    measure("GET 4 KiB", lambda: client.get("/dav/alice/f.txt", headers=auth))
    measure(
        "PROPFIND Depth 1",
        lambda: client.open("/dav/alice/", method="PROPFIND", headers={**auth, "Depth": "1"}),
    )
    if "--cpu" in sys.argv:
        event.remove(app.db.engine, "before_cursor_execute", seen)
        _cpu(client, auth)
    app.close()


def _cpu(client: Client, auth: dict[str, str]) -> None:
    for i in range(50):
        client.put(f"/dav/alice/c{i}.txt", data=b"x" * 4096, headers=auth)

    def best(label: str, call: Callable[[int], object], n: int) -> None:
        runs = []
        for _ in range(3):
            start = time.process_time()
            for i in range(n):
                call(i)
            runs.append((time.process_time() - start) / n * 1000)
        print(f"{label:24s} {min(runs):.3f} ms CPU/request")

    body = b"y" * 4096
    best("GET 4 KiB", lambda i: client.get(f"/dav/alice/c{i % 50}.txt", headers=auth), 1500)
    best(
        "PUT overwrite 4 KiB",
        lambda i: client.put(f"/dav/alice/c{i % 50}.txt", data=body, headers=auth),
        500,
    )
    best(
        "PUT new 4 KiB",
        lambda i: client.put(f"/dav/alice/n{time.time_ns()}.txt", data=body, headers=auth),
        500,
    )
    best(
        "PROPFIND Depth 1",
        lambda i: client.open("/dav/alice/", method="PROPFIND", headers={**auth, "Depth": "1"}),
        200,
    )


if __name__ == "__main__":
    main()
