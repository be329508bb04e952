"""Server settings, read once from environment variables (documented in README.md).

| variable | default | meaning |
|---|---|---|
| FHIR_DATA_DIR | ./data | where the embedded SQLite store keeps its file |
| MONGODB_URI | (unset) | use the MongoDB store at this URI instead of SQLite |
| MONGODB_DATABASE | fhir | database name on MongoDB |
| FHIR_BASE_URL | (unset) | public base URL (e.g. https://fhir.example.org/fhir); default: the base the client called |
| FHIR_MAX_BODY_BYTES | 16777216 | request bodies above this → 413 |
| FHIR_MAX_BUNDLE_ENTRIES | 10000 | bundles with more entries → 413 |
| FHIR_DEFAULT_COUNT / FHIR_MAX_COUNT | 20 / 1000 | search page sizes |
| FHIR_CHECK_REFERENCES | true | reject references to resources that do not exist |
| ASCMI_CANONICAL_BASE | https://ascmi.example.org/fhir | base of every ASCMI canonical URL and identifier system |
| ASCMI_TIMEZONE | America/Los_Angeles | the time zone that defines "the day" for consent dates |
| ASCMI_HONOR_DO_NOT_SHARE_ON_FLOOR | true | a member's explicit "do not share" wins over the legal floor |
| FHIR_LOAD_CONFORMANCE | true | write the ASCMI content (profiles/, mappings/, the Care Partner network) at start-up |
| FHIR_AUTH | smart | `smart` (SMART Backend Services, ACCESS.md §A) or `off` (every request is an administrator) |
| FHIR_EXPORT_FILE_BYTES | 67108864 | bulk export: an NDJSON file is closed (a new one begun) at this size |
| FHIR_EXPORT_RETENTION_SECONDS | 3600 | bulk export: a finished job and its files are deleted this long after |
| FHIR_EXPORT_MAX_JOBS_PER_CLIENT | 2 | bulk export: a client's queued + running jobs; one more kick-off → 429 |
| FHIR_EXPORT_WORKERS | 1 | bulk export: jobs this process runs at once (0: it serves the API, others run the jobs) |
| FHIR_EXPORT_LEASE_SECONDS | 30 | bulk export: a job whose worker stopped renewing this long is started over |
| FHIR_SUBSCRIPTION_DELIVERY | true | run a subscription delivery worker in this server process |
| FHIR_SUBSCRIPTION_ALLOW_HTTP | false | allow plain `http` endpoints to hosts other than loopback |
| FHIR_SUBSCRIPTION_ALLOW_PRIVATE | false | allow endpoints on private, link-local and metadata addresses |
| FHIR_SUBSCRIPTION_MAX_ATTEMPTS | 6 | delivery attempts before a subscription goes to `error` |
| FHIR_SUBSCRIPTION_RETRY_SECONDS | 1 | first retry delay (then ×2 each time, ±20 % jitter) |
| FHIR_SUBSCRIPTION_ENDPOINT_CONCURRENCY | 4 | requests in flight at once per endpoint origin |
| FHIR_SUBSCRIPTION_POLL_SECONDS | 0.5 | how often a worker looks for events written by other processes |
| FHIR_METRICS_TOKEN | (unset) | when set, `GET /metrics` needs `Authorization: Bearer <token>` |
| FHIR_LOG_FORMAT / FHIR_LOG_LEVEL | json / info | `json` (one object per line) or `text`; the log level |
| FHIR_TOKEN_LIFETIME | 300 | seconds an access token lives (`expires_in`); 60 s clock skew is allowed on top |
| FHIR_CLIENT_CACHE_SECONDS | 1 | how long a worker trusts its copy of a client's (or user's) `active` flag |
| FHIR_USER_TOKEN_LIFETIME | 900 | seconds the access token of a person signed in to the web page lives |
| FHIR_SQLITE_CACHE_MIB | 8 | SQLite page cache per connection (two per worker): what a worker's memory grows into |
| FHIR_VALIDATE_UNKNOWN_EXTENSIONS | error | $validate: an unknown extension is an `error` or a `warning` |
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path


def _bool(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _severity(value: str | None, default: str) -> str:
    text = (value or "").strip().lower()
    if not text:
        return default
    if text not in ("error", "warning"):
        raise ValueError(f"FHIR_VALIDATE_UNKNOWN_EXTENSIONS must be error or warning, not {value!r}")
    return text


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("data")
    mongodb_uri: str | None = None
    mongodb_database: str = "fhir"
    base_url: str | None = None
    max_body_bytes: int = 16 * 1024 * 1024
    max_bundle_entries: int = 10_000
    default_count: int = 20
    max_count: int = 1000
    check_references: bool = True
    canonical_base: str = "https://ascmi.example.org/fhir"
    timezone: str = "America/Los_Angeles"
    honor_do_not_share_on_floor: bool = True
    load_conformance: bool = True
    auth: str = "smart"
    export_file_bytes: int = 64 * 1024 * 1024
    export_retention_seconds: float = 3600.0
    export_max_jobs_per_client: int = 2
    export_workers: int = 1
    export_lease_seconds: float = 30.0
    export_poll_seconds: float = 1.0
    subscription_delivery: bool = True
    subscription_allow_http: bool = False
    subscription_allow_private: bool = False
    subscription_max_attempts: int = 6
    subscription_retry_seconds: float = 1.0
    subscription_endpoint_concurrency: int = 4
    subscription_poll_seconds: float = 0.5
    metrics_token: str | None = None
    log_format: str = "json"
    log_level: str = "info"
    token_lifetime: int = 300
    client_cache_seconds: float = 1.0
    user_token_lifetime: int = 900
    sqlite_cache_mib: int = 8
    malloc_trim_seconds: float = 10.0
    validate_unknown_extensions: str = "error"

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "fhir.sqlite3"

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        e = dict(os.environ if env is None else env)
        d = cls()
        return cls(
            data_dir=Path(e.get("FHIR_DATA_DIR") or d.data_dir),
            mongodb_uri=e.get("MONGODB_URI") or None,
            mongodb_database=e.get("MONGODB_DATABASE") or d.mongodb_database,
            base_url=(e.get("FHIR_BASE_URL") or "").rstrip("/") or None,
            max_body_bytes=int(e.get("FHIR_MAX_BODY_BYTES") or d.max_body_bytes),
            max_bundle_entries=int(e.get("FHIR_MAX_BUNDLE_ENTRIES") or d.max_bundle_entries),
            default_count=int(e.get("FHIR_DEFAULT_COUNT") or d.default_count),
            max_count=int(e.get("FHIR_MAX_COUNT") or d.max_count),
            check_references=_bool(e.get("FHIR_CHECK_REFERENCES"), d.check_references),
            canonical_base=(e.get("ASCMI_CANONICAL_BASE") or d.canonical_base).rstrip("/"),
            timezone=e.get("ASCMI_TIMEZONE") or d.timezone,
            honor_do_not_share_on_floor=_bool(e.get("ASCMI_HONOR_DO_NOT_SHARE_ON_FLOOR"), True),
            load_conformance=_bool(e.get("FHIR_LOAD_CONFORMANCE"), True),
            auth=(e.get("FHIR_AUTH") or d.auth).strip().lower(),
            export_file_bytes=int(e.get("FHIR_EXPORT_FILE_BYTES") or d.export_file_bytes),
            export_retention_seconds=float(e.get("FHIR_EXPORT_RETENTION_SECONDS") or d.export_retention_seconds),
            export_max_jobs_per_client=int(e.get("FHIR_EXPORT_MAX_JOBS_PER_CLIENT")
                                           or d.export_max_jobs_per_client),
            export_workers=int(e.get("FHIR_EXPORT_WORKERS") or d.export_workers),
            export_lease_seconds=float(e.get("FHIR_EXPORT_LEASE_SECONDS") or d.export_lease_seconds),
            subscription_delivery=_bool(e.get("FHIR_SUBSCRIPTION_DELIVERY"), d.subscription_delivery),
            subscription_allow_http=_bool(e.get("FHIR_SUBSCRIPTION_ALLOW_HTTP"), d.subscription_allow_http),
            subscription_allow_private=_bool(e.get("FHIR_SUBSCRIPTION_ALLOW_PRIVATE"), d.subscription_allow_private),
            subscription_max_attempts=max(1, int(e.get("FHIR_SUBSCRIPTION_MAX_ATTEMPTS")
                                                 or d.subscription_max_attempts)),
            subscription_retry_seconds=float(e.get("FHIR_SUBSCRIPTION_RETRY_SECONDS") or d.subscription_retry_seconds),
            subscription_endpoint_concurrency=max(1, int(e.get("FHIR_SUBSCRIPTION_ENDPOINT_CONCURRENCY")
                                                         or d.subscription_endpoint_concurrency)),
            subscription_poll_seconds=float(e.get("FHIR_SUBSCRIPTION_POLL_SECONDS") or d.subscription_poll_seconds),
            metrics_token=e.get("FHIR_METRICS_TOKEN") or None,
            log_format=(e.get("FHIR_LOG_FORMAT") or d.log_format).strip().lower(),
            log_level=(e.get("FHIR_LOG_LEVEL") or d.log_level).strip().lower(),
            token_lifetime=int(e.get("FHIR_TOKEN_LIFETIME") or d.token_lifetime),
            client_cache_seconds=float(e.get("FHIR_CLIENT_CACHE_SECONDS") or d.client_cache_seconds),
            user_token_lifetime=int(e.get("FHIR_USER_TOKEN_LIFETIME") or d.user_token_lifetime),
            sqlite_cache_mib=max(1, int(e.get("FHIR_SQLITE_CACHE_MIB") or d.sqlite_cache_mib)),
            malloc_trim_seconds=max(0.0, float(e.get("FHIR_MALLOC_TRIM_SECONDS") or d.malloc_trim_seconds)),
            validate_unknown_extensions=_severity(e.get("FHIR_VALIDATE_UNKNOWN_EXTENSIONS"),
                                                  d.validate_unknown_extensions),
        )
