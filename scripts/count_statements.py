"""SQL statements per WebDAV request, in-process (werkzeug test client over the full WSGI app on
a fresh embedded store): a deterministic measure of the hot paths' database work, independent of
the machine's load. Usage: python scripts/count_statements.py"""

from __future__ import annotations

import base64
import tempfile
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
    app.close()


if __name__ == "__main__":
    main()
