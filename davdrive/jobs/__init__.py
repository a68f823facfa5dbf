"""Background jobs run by APScheduler inside ``davdrive serve``."""
