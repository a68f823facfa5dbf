"""The JSON API at ``/api/v1/`` (Flask): revisions, downloads, uploads, trash, changes.

Flask was chosen for routing and request parsing (well kept, WSGI-native, small); the routes
are thin adapters over the drive service, like ``providers/`` for WebDAV.
"""

from davdrive.api.app import make_api_app

__all__ = ["make_api_app"]
