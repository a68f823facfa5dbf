"""Browser pages of davdrive: the public pages of share links at ``/s/<token>``.

Like ``davdrive.api`` these are thin adapters over the drive service (``app.drive``); they never
touch SQL, the schema or the blockstore. ``link_pages`` is the Flask app, ``zipstream`` writes a
folder as a zip archive to a stream without building it in memory.
"""
