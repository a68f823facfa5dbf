"""The Nextcloud/ownCloud client facade (DESIGN §1): ``status.php``, the OCS API and, later,
the login flows, as a JSON/XML face over the services. WebDAV under ``/remote.php/`` is not
here: it is the provider's (``providers.nextcloud_dav``).

Like every adapter this package never imports SQLAlchemy, ``davdrive.metadata``, the blockstore
or storage; it asks ``davdrive.service`` only.
"""
