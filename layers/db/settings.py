"""Settings, read from the environment only when a caller builds them (never at import)."""

from __future__ import annotations

from datetime import time
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from geo.hotspots.budget import Limits
from layers.supervision.rates import MIN_CASES


class Settings(BaseSettings):
    """Runtime configuration.

    ``DATABASE_URL`` points sitewatch at an existing PostGIS server; without it the project
    manages its own cluster under ``SITEWATCH_DATA_DIR/pgdata``.
    """

    model_config = SettingsConfigDict(env_prefix="SITEWATCH_", extra="ignore")

    database_url: str | None = Field(default=None, validation_alias="DATABASE_URL")
    data_dir: Path = Path(".sitewatch")
    # The managed cluster listens on a unix socket only; the port just names the socket file,
    # so it can never collide with a system server on TCP 5432.
    pg_port: int = Field(default=54329, ge=1024, le=65535)
    pg_database: str = "sitewatch"
    # The PostgreSQL bin directory (initdb, pg_ctl, pg_dump, ...) for the managed cluster and
    # backups; unset: the newest under /usr/lib/postgresql, else the one on PATH.
    pg_bindir: Path | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    pool_min_size: int = Field(default=1, ge=0)
    pool_max_size: int = Field(default=10, ge=1)
    # Seconds a request waits for a pooled connection before answering 503.
    pool_timeout: float = Field(default=5.0, gt=0)
    # Read replicas (layers/db/replicas.py, docs/deploy.md): libpq DSNs of hot standbys,
    # comma-separated; read-only requests and the worker's analyses read from them. Unset and
    # `sitewatch db replica start` has made the managed standby: that one is used.
    replica_url: str = ""
    # A replica further behind than this many seconds is skipped (the primary answers): a
    # leader's map must not show an hour-old picture because a standby fell behind.
    replica_max_lag: float = Field(default=10.0, ge=0)
    # After a write, the writer's next read waits this long on a replica for the write's WAL
    # position to be replayed there, else the primary answers: callers read their own writes.
    replica_wait: float = Field(default=0.5, ge=0)
    # Seconds between checks of the replicas' state (up, lag): requests read the last check,
    # never probe a replica themselves.
    replica_check_interval: float = Field(default=2.0, gt=0)
    # The district's clock (an IANA name), the one home of the time zone: Python code gets it
    # as ``Settings.zone``, passed explicitly; SQL as every session's TimeZone, which
    # layers.db.database.conninfo sets on every connection (working-day deadlines, times shown
    # and exported); map and field pages from the page. Local dates (phases, since/until days,
    # round dates) and naive times (spreadsheets, EXIF) are read in it.
    timezone: str = "Asia/Shanghai"
    # Guards (api.guards): per-address limits in the `limits` notation, body size, CORS.
    anonymous_rate: str = "120/minute"
    failed_auth_rate: str = "20/minute"
    max_body_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    cors_origins: str = ""  # comma-separated; empty: CORS off
    # Reverse proxies whose X-Forwarded-For is believed (comma-separated addresses or
    # networks); empty: the header is ignored and the TCP peer is the client.
    trusted_proxies: str = ""
    # The address users reach the server at (e.g. https://sitewatch.example.gov.cn); links in
    # OGC API documents use it instead of the request's Host header when set.
    public_url: str = ""
    # HTTPS served by `sitewatch serve` itself (PEM files; both or neither): a trial on an
    # office network with `sitewatch tls make`. In production a reverse proxy terminates TLS
    # (docs/deploy.md).
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # 天地图 basemap key (browser key from console.tianditu.gov.cn); empty: no Tianditu layer.
    tianditu_key: str = ""
    # Notifications (layers/notify): the SMTP server for the email channel
    # (smtp://user:password@host:port?from=addr, smtps:// for TLS from the start, starttls=1
    # to upgrade); webhook targets on loopback, link-local or private addresses are refused
    # unless webhook_allow_private (on-premise receivers, tests); a delivery is retried with
    # backoff for delivery_retry_hours after its event, then dead; each send waits at most
    # delivery_timeout seconds and reads at most delivery_max_response bytes of the answer.
    smtp_url: str = ""
    webhook_allow_private: bool = False
    delivery_retry_hours: float = Field(default=24.0, gt=0)
    delivery_timeout: float = Field(default=10.0, gt=0)
    delivery_max_response: int = Field(default=64 * 1024, ge=1024)
    # Analysis snapshots (layers/analysis/snapshots.py), in seconds: a stale snapshot is served (and
    # refreshed in the background) while younger than max_stale; a current one is refreshed
    # once older than max_age (overdue counts move with the clock); the worker's refresh-maps
    # job keeps the landing views current every interval (0: off).
    snapshot_max_stale: float = Field(default=600.0, ge=0)
    snapshot_max_age: float = Field(default=900.0, gt=0)
    snapshot_interval: float = Field(default=30.0, ge=0)
    # Analysis budgets (layers/analysis/budget.py; the other ceilings are
    # geo.hotspots.budget.Limits):
    # issues one analysis may read; heavy analyses running at once per process; seconds
    # another waits for a slot, and how many may wait, before the next hears 503 at once.
    analysis_max_rows: int = Field(default=Limits.max_rows, ge=1)
    analysis_workers: int = Field(default=2, ge=1)
    analysis_wait: float = Field(default=2.0, ge=0)
    analysis_queue: int = Field(default=2, ge=0)
    # Evidence photos are stored and served re-encoded without metadata (EXIF position, camera
    # make); true also keeps each upload as sent, readable by admins only
    # (GET /api/v1/evidence/{ref}?original=true).
    keep_original_photos: bool = False
    # A rate (rework, on-time closure) over fewer cases than this is shown but not ranked
    # when the scores are ordered by it ("too few cases"); why 20: layers.supervision.rates.
    rank_min_cases: int = Field(default=MIN_CASES, ge=1)
    # Exports (GET /api/v1/exports/...) formatting at once per process; the next hears 503.
    export_concurrency: int = Field(default=2, ge=1)
    # The background worker (layers/worker, `sitewatch worker`): seconds between its loops
    # (each writes its heartbeat and runs the jobs that are due); /health calls a heartbeat
    # older than worker_stale seconds stale.
    worker_tick: float = Field(default=5.0, gt=0)
    worker_stale: float = Field(default=60.0, gt=0)
    # Seconds between the worker's delivery rounds (its "deliver" job): the longest an
    # outbox message waits for its first attempt, give or take one tick.
    deliver_every: float = Field(default=5.0, gt=0)
    # Nightly backups by the worker into this folder, keeping the newest backup_keep files;
    # unset: no nightly backup.
    backup_dir: Path | None = None
    backup_keep: int = Field(default=7, ge=1)
    # The daily digest (每日通报) is written at this local time (HH:MM in ``timezone``).
    digest_at: time = time(8, 30)
    # Years a closed issue keeps its reporter's name and contact and its photos in the live
    # system (layers/retention.py, docs/security.md): three, one assessment cycle of the
    # national civilized-city title (全国文明城市, 三年一届), during which a closed case may be
    # rechecked or appealed; after it, 个人信息保护法 art. 19 wants the personal data gone.
    retention_years: int = Field(default=3, ge=1, le=100)

    @field_validator("pg_bindir", "backup_dir", "tls_cert", "tls_key", mode="before")
    @classmethod
    def _unset_when_empty(cls, value: object) -> object:
        # SITEWATCH_PG_BINDIR= (empty) means "search", not the current directory.
        return None if value == "" else value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}: give an IANA name such as "
                             "Asia/Shanghai") from None
        return value

    @property
    def zone(self) -> ZoneInfo:
        """The district's time zone (``timezone``) for local dates and clock times."""
        return ZoneInfo(self.timezone)

    @property
    def replica_urls(self) -> list[str]:
        """The DSNs of ``replica_url``, in order, without blanks."""
        return [u.strip() for u in self.replica_url.split(",") if u.strip()]

    @property
    def managed(self) -> bool:
        """True when sitewatch runs its own local cluster (no DATABASE_URL)."""
        return not self.database_url

    @property
    def site_url(self) -> str:
        """Where users reach the server, for links sent away from it (sign-in links, chat
        messages): ``public_url``, else the address ``serve`` binds (a wildcard bind named as
        loopback; https when it serves TLS), without a trailing slash."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host  # noqa: S104 -- compared, not bound
        if ":" in host:
            host = f"[{host}]"
        scheme = "https" if self.tls_cert else "http"
        return f"{scheme}://{host}:{self.port}"
