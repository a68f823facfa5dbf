"""davdrive: a self-hosted WebDAV file drive with block storage, dedup, zstd and AES-GCM."""

__version__ = "0.1.0"
