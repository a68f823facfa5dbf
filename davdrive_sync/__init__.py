"""davdrive-sync: the delta-sync client (imports only davdrive.protocol of the server)."""
