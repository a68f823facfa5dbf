"""Prometheus metrics of one davdrive process (issue 15, the operators' view).

Every metric is defined here, once, so any layer may count without importing server code:
the core calls ``count_blocks``, the jobs time their runs, the HTTP doors (``davdrive serve``'s
dispatcher middleware and ``davdrive notify``) count requests. The metrics live in this
module's own ``REGISTRY`` (not prometheus_client's global default), created once per process,
so building several apps in one process never registers a name twice. What depends on one
app (the open upload sessions, counted by its database) is added per app by
``app_registry(...)``, which ``/metrics`` renders.

The HTTP metrics are labelled by door: ``dav`` (``/dav``, ``/remote.php``), ``api``
(``/api/...``, the Nextcloud facade), ``notify`` (the long-poll, in either process), ``ui``
(``/ui``, ``/s/<token>`` link pages) and ``other`` (``/healthz``, ``/metrics``, probes, 404s).
Methods outside the known WebDAV/HTTP set are counted as ``other`` (a client cannot grow the
label set). ``_created`` series are disabled: they double the page and nobody graphs them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

disable_created_metrics()

DOORS = ("dav", "api", "notify", "ui", "other")
METHODS = frozenset(
    (
        "GET", "HEAD", "PUT", "POST", "PATCH", "DELETE", "OPTIONS",
        "PROPFIND", "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK", "REPORT", "SEARCH",
    )
)  # fmt: skip
# Small requests are what the server is tuned for: fine buckets below 100 ms; long-polls
# (door "notify") wait up to 120 s.
LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    120.0,
)  # fmt: skip
JOB_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)

# The text format every Prometheus reads (the names here need none of 1.0.0's escaping).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

REGISTRY = CollectorRegistry(auto_describe=True)

HTTP_REQUESTS = Counter(
    "davdrive_http_requests",
    "HTTP requests answered, by door, method and status.",
    ("door", "method", "status"),
    registry=REGISTRY,
)
HTTP_DURATION = Histogram(
    "davdrive_http_request_duration_seconds",
    "Time from the request reaching the application to the last response byte handed to the "
    "server, by door and method.",
    ("door", "method"),
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
HTTP_BYTES_IN = Counter(
    "davdrive_http_request_bytes",
    "Request body bytes, by door (the Content-Length of requests that declare one).",
    ("door",),
    registry=REGISTRY,
)
HTTP_BYTES_OUT = Counter(
    "davdrive_http_response_bytes",
    "Response body bytes handed to the server, by door.",
    ("door",),
    registry=REGISTRY,
)
HTTP_ERRORS = Counter(
    "davdrive_http_errors",
    "5xx answers (each is also on the error log), by door and status.",
    ("door", "status"),
    registry=REGISTRY,
)
LONGPOLLS_PARKED = Gauge(
    "davdrive_longpolls_parked",
    "Long-polls (/api/v1/longpoll) this process holds open right now.",
    registry=REGISTRY,
)
JOB_RUNS = Counter(
    "davdrive_job_runs",
    "Scheduled job runs, by job and outcome (ok or failed).",
    ("job", "outcome"),
    registry=REGISTRY,
)
JOB_DURATION = Histogram(
    "davdrive_job_duration_seconds",
    "Duration of scheduled job runs, by job.",
    ("job",),
    buckets=JOB_BUCKETS,
    registry=REGISTRY,
)
BLOCKS_WRITTEN = Counter(
    "davdrive_blocks_written",
    "Blocks written to block storage (new to their account).",
    registry=REGISTRY,
)
BLOCKS_DEDUPED = Counter(
    "davdrive_blocks_deduped",
    "Blocks not written because the account already stored them.",
    registry=REGISTRY,
)
PROCESS = ProcessCollector(namespace="davdrive", registry=REGISTRY)


def count_blocks(new: int, deduped: int) -> None:
    """Count ``new`` blocks written and ``deduped`` blocks found already stored (the block
    pipeline calls this once per ingest)."""
    if new:
        BLOCKS_WRITTEN.inc(new)
    if deduped:
        BLOCKS_DEDUPED.inc(deduped)


def method_label(method: str) -> str:
    """The ``method`` label: the method when known, else ``other``."""
    return method if method in METHODS else "other"


class HTTPSeries:
    """The metric children of one (door, method, status): looked up once, then reused."""

    __slots__ = ("bytes_in", "bytes_out", "duration", "errors", "requests")

    def __init__(self, door: str, method: str, status: str) -> None:
        self.requests = HTTP_REQUESTS.labels(door, method, status)
        self.duration = HTTP_DURATION.labels(door, method)
        self.bytes_in = HTTP_BYTES_IN.labels(door)
        self.bytes_out = HTTP_BYTES_OUT.labels(door)
        self.errors = HTTP_ERRORS.labels(door, status) if status >= "500" else None

    def record(self, seconds: float, bytes_in: int, bytes_out: int) -> None:
        """Count one request: the counter, the histogram, and the body bytes both ways."""
        self.requests.inc()
        self.duration.observe(seconds)
        if bytes_in > 0:
            self.bytes_in.inc(bytes_in)
        if bytes_out > 0:
            self.bytes_out.inc(bytes_out)
        if self.errors is not None:
            self.errors.inc()


_series: dict[tuple[str, str, str], HTTPSeries] = {}


def http_series(door: str, method: str, status: str) -> HTTPSeries:
    """The children for these labels: one dict lookup per request, no lock of ours (a first
    use may build the entry twice in a race; both point at the same children)."""
    key = (door, method, status)
    found = _series.get(key)
    if found is None:
        found = _series[key] = HTTPSeries(door, method, status)
    return found


class CallbackGauge(Collector):
    """A gauge read at scrape time from ``read()`` (a database count, a queue length)."""

    def __init__(self, name: str, documentation: str, read: Callable[[], float]) -> None:
        self.name = name
        self.documentation = documentation
        self.read = read

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return [GaugeMetricFamily(self.name, self.documentation)]

    def collect(self) -> Iterable[GaugeMetricFamily]:
        return [GaugeMetricFamily(self.name, self.documentation, value=self.read())]


def app_registry(*collectors: Collector) -> CollectorRegistry:
    """A registry for one app's ``/metrics``: the process-wide metrics plus ``collectors``."""
    registry = CollectorRegistry()
    registry.register(_Process())
    for collector in collectors:
        registry.register(collector)
    return registry


class _Process(Collector):
    """Everything in ``REGISTRY``, as one collector of another registry."""

    def describe(self) -> Iterable[object]:
        return []  # names are not checked against the app's own (they are distinct)

    def collect(self) -> Iterable[object]:
        return REGISTRY.collect()


__all__ = [
    "BLOCKS_DEDUPED",
    "BLOCKS_WRITTEN",
    "CONTENT_TYPE",
    "DOORS",
    "HTTP_BYTES_IN",
    "HTTP_BYTES_OUT",
    "HTTP_DURATION",
    "HTTP_ERRORS",
    "HTTP_REQUESTS",
    "JOB_DURATION",
    "JOB_RUNS",
    "LONGPOLLS_PARKED",
    "REGISTRY",
    "CallbackGauge",
    "HTTPSeries",
    "app_registry",
    "count_blocks",
    "http_series",
    "method_label",
]
