"""``GET /status.php``: what the clients read before anything else (no authentication).

The clients parse ``version`` (dotted numbers) and refuse a server older than 7.0.0 outright;
Nextcloud desktop 3.x warns below its "minimum supported" major (16 up to 3.14, 20 in the
2025-26 releases), ownCloud 2.11 warns below 10.0.0 and when ``version-productname`` ends in
"Nextcloud". ``installed`` must be present (ownCloud 2.11 takes a document without it for "no
server here") and ``maintenance`` false. davdrive speaks the protocol of Nextcloud 30, so it
says so, under its own product name.
"""

from __future__ import annotations

from typing import Any

VERSION = (30, 0, 0, 0)
VERSION_STRING = "30.0.0"
PRODUCT_NAME = "davdrive"


def status_document() -> dict[str, Any]:
    """The JSON object of ``/status.php`` (key order as Nextcloud's)."""
    return {
        "installed": True,
        "maintenance": False,
        "needsDbUpgrade": False,
        "version": ".".join(str(n) for n in VERSION),
        "versionstring": VERSION_STRING,
        "edition": "",
        "productname": PRODUCT_NAME,
        "extendedSupport": False,
    }


__all__ = ["PRODUCT_NAME", "VERSION", "VERSION_STRING", "status_document"]
