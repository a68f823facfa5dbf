"""Configuration: defaults for the embedded setup, overridden by a YAML file and the CLI."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

ENV_MASTER_KEY = "DAVDRIVE_MASTER_KEY"  # the current master key, base64 (instead of the file)

KiB = 1 << 10
GiB = 1 << 30
DEFAULT_QUOTA = 10 * 10**9  # 10 GB, as the issue states it (decimal, like Dropbox/Nextcloud quotas)
MAX_FILE_SIZE = 10 * 10**9


@dataclass(frozen=True)
class Retention:
    """How long history and trash are kept (``service.retention``, docs/STORAGE.md
    "Retention"): every version for ``keep_all_days``, then thinned; at most ``max_versions``
    per file; history's unique block bytes at most ``history_share`` of the quota; trash
    entries for ``trash_days``. Pinned and current versions are never dropped."""

    keep_all_days: float = 30.0
    max_versions: int = 100
    history_share: float = 0.5
    trash_days: float = 30.0

    def overridden(self, values: Mapping[str, Any] | None) -> Retention:
        """These settings with ``values`` (a subset of the fields) applied; ``ValueError``
        naming the setting for an unknown key or a bad value."""
        return replace(self, **check_retention(values or {}))


def check_retention(values: Mapping[str, Any]) -> dict[str, Any]:
    """Validated retention settings (numbers in range, known keys), normalised."""
    if not isinstance(values, Mapping):
        raise ValueError("retention must be a mapping of keep_all_days, max_versions, ...")
    known = {f.name for f in fields(Retention)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown retention settings: {', '.join(map(str, unknown))}")
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"retention.{key} must be a number, not {value!r}")
        if key == "max_versions":
            if not float(value).is_integer() or value < 1:
                raise ValueError(
                    f"retention.max_versions must be a whole number >= 1, not {value!r}"
                )
            out[key] = int(value)
        elif key == "history_share":
            if not 0 <= value <= 1:
                raise ValueError(f"retention.history_share must be between 0 and 1, not {value!r}")
            out[key] = float(value)
        else:
            if not 0 <= value < 10**6:
                raise ValueError(f"retention.{key} must be 0 or more days, not {value!r}")
            out[key] = float(value)
    return out


@dataclass(frozen=True)
class Archive:
    """The cold tier (``service.archive``, docs/STORAGE.md "Cold tier"): blocks that only
    versions neither current nor pinned use, untouched for ``after_days``, move to a second
    store (``url``) or, with one ``s3://`` store, to another S3 ``storage_class``. Off unless
    one of the two is given. ``restore_days``/``restore_tier``: the RestoreObject request for
    GLACIER and DEEP_ARCHIVE; ``retry_after``: seconds a reader is told to wait (0: by tier)."""

    after_days: float = 90.0
    url: str = ""
    storage_class: str = ""
    restore_days: int = 7
    restore_tier: str = "Standard"
    retry_after: int = 0

    @property
    def enabled(self) -> bool:
        return bool(self.url or self.storage_class)


def check_archive(values: Any) -> Archive:
    """The ``archive`` section validated; ``ValueError`` naming the setting."""
    from davdrive.storage.tiered import RESTORE_TIERS, STORAGE_CLASSES

    if values is None or values is False:
        return Archive()
    if not isinstance(values, Mapping):
        raise ValueError("archive must be a mapping: {after_days, url | storage_class, ...}")
    known = {f.name for f in fields(Archive)}
    unknown = sorted(set(map(str, values)) - known)
    if unknown:
        raise ValueError(f"archive: unknown settings {', '.join(unknown)} (known: {sorted(known)})")
    out: dict[str, Any] = {}
    for key in ("after_days", "restore_days", "retry_after"):
        if key not in values:
            continue
        value = values[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ValueError(f"archive.{key} must be 0 or more, not {value!r}")
        if key == "restore_days" and (not float(value).is_integer() or value < 1):
            raise ValueError(f"archive.restore_days must be a whole number >= 1, not {value!r}")
        out[key] = float(value) if key == "after_days" else int(value)
    url = values.get("url") or ""
    if not isinstance(url, str):
        raise ValueError(f"archive.url must be a store URL, not {url!r}")
    if url and url.split(":", 1)[0] not in ("file", "memory", "s3"):
        raise ValueError(
            f"archive.url {url!r}: use file:///path, s3://bucket/prefix?... (or memory://)"
        )
    storage_class = values.get("storage_class") or ""
    if not isinstance(storage_class, str):
        raise ValueError(f"archive.storage_class must be a string, not {storage_class!r}")
    storage_class = storage_class.strip().upper()
    if storage_class and storage_class not in STORAGE_CLASSES:
        raise ValueError(
            f"archive.storage_class {storage_class!r} is not one of {', '.join(STORAGE_CLASSES)}"
        )
    if url and storage_class:
        raise ValueError("archive: give url (a cold store) or storage_class (S3), not both")
    tier = values.get("restore_tier", "Standard")
    match = [t for t in RESTORE_TIERS if isinstance(tier, str) and t.lower() == tier.lower()]
    if not match:
        raise ValueError(
            f"archive.restore_tier must be one of {', '.join(RESTORE_TIERS)}, not {tier!r}"
        )
    return Archive(url=url, storage_class=storage_class, restore_tier=match[0], **out)


@dataclass
class Config:
    """Everything the app factory needs; three URLs pick the concrete parts (DESIGN.md §1)."""

    data_dir: Path = Path("davdrive-data")
    database_url: str = ""  # default: sqlite:///<data_dir>/davdrive.db
    # default: file://<data_dir>/blocks; a list of two or more stores replicates every block
    blocks_url: str | list[Any] = ""
    bus_url: str = "memory://"
    master_key_file: str = ""  # default: <data_dir>/master.key
    host: str = "0.0.0.0"
    port: int = 8080
    threads: int = 64  # workers for WebDAV and the API
    longpoll_slots: int = 1024  # extra workers that only long-polls may hold
    # Slow clients (issue 16): seconds to receive a request's line and headers in total;
    # open connections per client address (IPv6: per /64; 0: no cap); addresses or networks
    # without a cap (the reverse proxy, which connects from one address for everyone).
    request_head_timeout: float = 20.0
    max_connections_per_client: int = 64
    connection_limit_exempt: list[str] = field(default_factory=lambda: ["127.0.0.1", "::1"])
    tls_cert: str = ""
    tls_key: str = ""
    default_quota: int = DEFAULT_QUOTA
    max_file_size: int = MAX_FILE_SIZE
    zstd_level: int = 1
    pipeline_threads: int = 2
    # Files up to this size are kept inline (sealed) in the metadata database: no object and
    # no fsync beyond the database's commit (issue 15). 0 keeps every block in the store.
    inline_max: int = 64 * KiB
    log_level: str = "INFO"
    access_log: str = "-"  # one line per request: "-" stdout, a file path, or "off"
    journal_retention_days: float = 90.0  # older changes are pruned; older cursors get 410
    # Seconds the final MOVE of a chunked upload waits for the assembly before it answers 202
    # with OC-JobStatus-Location (the client polls; a reverse proxy's timeout never hits)
    assembly_wait: float = 20.0
    # Seconds a block uploaded through the block API (delta sync) is kept while no commit uses
    # it; upkeep then reclaims it. A client must commit within this window (or upload again).
    staged_block_grace: float = 24 * 3600.0
    upkeep_interval: int = 600  # seconds between upkeep passes (uploads, locks, journal)
    # Seconds an unused block row or an orphan object is kept before GC deletes it
    gc_grace: float = 24 * 3600.0
    # Scheduled jobs (``davdrive.jobs``): seconds between runs of each, 0 turns one off; each
    # run happens once across server processes (a lease in the database). Missing: DEFAULT_JOBS
    # (upkeep: ``upkeep_interval``).
    jobs: dict[str, float] = field(default_factory=dict)
    # Seconds a job's lease lasts unless renewed (a running job renews it): a crashed holder's
    # run is taken over this long after its last renewal
    job_lease_ttl: float = 300.0
    # GET /metrics (Prometheus): "off" (404), "public" (no authentication: scrape on a
    # private network), "admin" (Basic of an admin account)
    metrics: str = "off"
    # Minutes a web app session may go unused before it ends (sign in again): a working day
    session_idle_minutes: float = 480.0
    # Versions and trash kept (per-account overrides: ``davdrive user retention``)
    retention: Retention = field(default_factory=Retention)
    # Replication (blocks_url lists several stores): copies a write needs; 0: every store
    min_copies: int = 0
    # Keys for s3:// stores ({access_key_id, secret_access_key, session_token}); absent: the
    # environment (AWS_ACCESS_KEY_ID, ...). Never in blocks_url: URLs are printed and logged.
    s3: dict[str, Any] = field(default_factory=dict)
    # scrub: {rate: bytes read per second while verifying blocks, e.g. 20MB; 0: no limit}
    scrub: dict[str, Any] = field(default_factory=lambda: {"rate": 20 * 10**6})
    # The cold tier: {after_days, url | storage_class, restore_days, restore_tier, retry_after}
    archive: Archive = field(default_factory=Archive)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def embedded_metadata(self) -> bool:
        """Whether the metadata is an SQLite file (one server per data directory)."""
        return (self.database_url or "sqlite").split(":", 1)[0].split("+", 1)[0] == "sqlite"

    def resolved(self) -> Config:
        """Fill the URL defaults that depend on the data directory."""
        data = Path(self.data_dir).expanduser().absolute()
        c = Config(**{f.name: getattr(self, f.name) for f in fields(self)})
        c.data_dir = data
        c.database_url = self.database_url or f"sqlite:///{data / 'davdrive.db'}"
        c.blocks_url = self.blocks_url or f"file://{data / 'blocks'}"
        c.master_key_file = self.master_key_file or str(data / "master.key")
        return c


def parse_size(value: str | int) -> int:
    """Parse '10GB', '512MiB', '1000' into bytes."""
    if isinstance(value, int):
        return value
    s = value.strip().upper().replace(" ", "")
    units = {
        "KIB": 1 << 10,
        "MIB": 1 << 20,
        "GIB": 1 << 30,
        "TIB": 1 << 40,
        "KB": 10**3,
        "MB": 10**6,
        "GB": 10**9,
        "TB": 10**12,
        "K": 10**3,
        "M": 10**6,
        "G": 10**9,
        "T": 10**12,
        "B": 1,
    }
    for unit, mult in units.items():
        if s.endswith(unit):
            number = s[: -len(unit)]
            try:
                return int(float(number) * mult)
            except ValueError:
                break
    try:
        return int(s)
    except ValueError:
        raise ValueError(f"not a size: {value!r} (try 10GB, 512MiB or a byte count)") from None


def _access_log_target(value: Any) -> str:
    """``access_log``: "-" (stdout), "off", or a file path; YAML's bare ``off`` is False."""
    if value is False:
        return "off"
    if value is None or value is True:
        return "-"
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f'access_log must be "-", "off" or a file path, not {value!r}')
    return value.strip()


METRICS_MODES = ("off", "public", "admin")


def _metrics_mode(value: Any) -> str:
    """``metrics``: "off", "public" or "admin"; YAML's bare ``off`` is False."""
    if value is False or value is None:
        return "off"
    mode = value.strip().lower() if isinstance(value, str) else value
    if mode not in METRICS_MODES:
        raise ValueError(f'metrics must be "off", "public" or "admin", not {value!r}')
    return mode


def _check_connection_limits(values: dict[str, Any]) -> None:
    """Validate (and normalise in place) the slow-client settings."""
    if "request_head_timeout" in values:
        timeout = values["request_head_timeout"]
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ValueError(f"request_head_timeout must be a positive number, not {timeout!r}")
        values["request_head_timeout"] = float(timeout)
    if "max_connections_per_client" in values:
        cap = values["max_connections_per_client"]
        if isinstance(cap, bool) or not isinstance(cap, int) or cap < 0:
            raise ValueError(f"max_connections_per_client must be 0 or more, not {cap!r}")
    if "connection_limit_exempt" in values:
        exempt = values["connection_limit_exempt"]
        if exempt is None:
            exempt = []
        elif isinstance(exempt, str):
            exempt = [exempt]
        if not isinstance(exempt, list):
            raise ValueError("connection_limit_exempt must be a list of addresses or networks")
        for entry in exempt:
            try:
                ipaddress.ip_network(str(entry).strip(), strict=False)
            except ValueError:
                raise ValueError(
                    f"connection_limit_exempt: {entry!r} is not an address or network"
                ) from None
        values["connection_limit_exempt"] = [str(e).strip() for e in exempt]


def _check_storage(values: dict[str, Any]) -> None:
    """Validate (and normalise in place) ``blocks_url``, ``min_copies``, ``s3``, ``scrub``."""
    url = values.get("blocks_url", "")
    if isinstance(url, list):
        if len(url) < 2:
            raise ValueError("blocks_url: a list needs at least two stores (or give one URL)")
    elif url is None or not isinstance(url, str):
        raise ValueError(f"blocks_url must be a URL or a list of store URLs, not {url!r}")
    copies = values.get("min_copies", 0)
    stores = len(url) if isinstance(url, list) else 1
    if isinstance(copies, bool) or not isinstance(copies, int) or not 0 <= copies <= stores:
        raise ValueError(f"min_copies must be 0 (all) to {stores} (the stores), not {copies!r}")
    for key in ("s3", "scrub"):
        if values.get(key) is None:
            values.pop(key, None)
        elif not isinstance(values[key], dict):
            raise ValueError(f"{key} must be a mapping")
    scrub = values.get("scrub", {})
    unknown = sorted(set(scrub) - {"rate"})
    if unknown:
        raise ValueError(f"scrub: unknown settings {', '.join(map(str, unknown))}")
    if "rate" in scrub:
        scrub["rate"] = parse_size(scrub["rate"] or 0)


JOB_NAMES = ("upkeep", "gc", "prune", "scrub", "replicate", "archive")
# scrub: on request; replicate: copies owed to a replica that was down (nothing when
# unreplicated); archive: the cold tier's rule (nothing when ``archive`` is off)
DEFAULT_JOBS = {
    "gc": 24 * 3600.0,
    "prune": 3600.0,
    "scrub": 0.0,
    "replicate": 60.0,
    "archive": 24 * 3600.0,
}


def _check_jobs(values: dict[str, Any]) -> None:
    """Validate (and normalise in place) ``jobs``, ``gc_grace`` and ``job_lease_ttl``."""
    jobs = values.get("jobs")
    if jobs is None:
        values.pop("jobs", None)
    elif not isinstance(jobs, dict):
        raise ValueError("jobs must be a mapping of job name to seconds between runs")
    else:
        unknown = sorted(set(map(str, jobs)) - set(JOB_NAMES))
        if unknown:
            raise ValueError(f"jobs: unknown jobs {', '.join(unknown)} (known: {JOB_NAMES})")
        for name, period in jobs.items():
            if period is None or period is False:
                period = 0
            if isinstance(period, bool) or not isinstance(period, (int, float)) or period < 0:
                raise ValueError(f"jobs.{name} must be 0 (off) or seconds, not {period!r}")
            jobs[name] = float(period)
    for key in ("gc_grace", "job_lease_ttl"):
        if key in values:
            value = values[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{key} must be 0 or more seconds, not {value!r}")
            values[key] = float(value)


def load_config(path: str | os.PathLike[str] | None = None, **overrides: Any) -> Config:
    """Read a YAML config file (optional) and apply non-None overrides; return it resolved."""
    values: dict[str, Any] = {}
    if path:
        with open(path, encoding="utf-8") as fh:
            loaded = yaml.safe_load(fh) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{path}: the config must be a mapping")
        values.update(loaded)
    values.update({k: v for k, v in overrides.items() if v is not None})
    known = {f.name for f in fields(Config)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown config keys: {', '.join(unknown)}")
    for key in ("default_quota", "max_file_size", "inline_max"):
        if key in values:
            values[key] = parse_size(values[key])
    if "access_log" in values:
        values["access_log"] = _access_log_target(values["access_log"])
    if "metrics" in values:
        values["metrics"] = _metrics_mode(values["metrics"])
    _check_connection_limits(values)
    _check_jobs(values)
    _check_storage(values)
    if "retention" in values:
        values["retention"] = Retention().overridden(values["retention"])
    if "archive" in values:
        values["archive"] = check_archive(values["archive"])
    idle = values.get("session_idle_minutes", 1.0)
    if isinstance(idle, bool) or not isinstance(idle, (int, float)) or not 0 < idle < 10**7:
        raise ValueError(f"session_idle_minutes must be a positive number, not {idle!r}")
    grace = values.get("staged_block_grace", 1.0)
    if isinstance(grace, bool) or not isinstance(grace, (int, float)) or not 0 < grace < 10**9:
        raise ValueError(f"staged_block_grace must be a positive number, not {grace!r}")
    if "data_dir" in values:
        values["data_dir"] = Path(values["data_dir"])
    if os.environ.get("DAVDRIVE_DATABASE_URL") and "database_url" not in values:
        values["database_url"] = os.environ["DAVDRIVE_DATABASE_URL"]
    return Config(**values).resolved()
