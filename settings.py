"""Settings for the worker and the CLI, read from the environment (or a .env file) when asked for.

Secrets (the SendGrid key, the clients' SCIM tokens) live here and in the worker only: workflows
carry references to them, never the values.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from adapters.certification_links import LinkSigner
from domain.email_kinds import EmailKind


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    temporal_address: str = "localhost:7233"
    """Where the Temporal frontend listens."""
    temporal_namespace: str = "default"
    task_queue: str = "engagements"
    """The task queue the worker polls and the CLI starts workflows on."""
    database_url: str | None = None
    """SQLAlchemy URL (postgresql+asyncpg://...); unset means an embedded PostgreSQL under run_dir."""
    run_dir: Path = Path(".run")
    """Where the embedded defaults keep their data (PostgreSQL files, outbox folder, logs)."""
    sendgrid_api_key: SecretStr | None = None
    """With a key, email goes through SendGrid; without one, to the outbox folder."""
    sendgrid_host: str = "https://api.sendgrid.com"
    sendgrid_timeout_seconds: float = 10.0
    email_from: str = "engagements@firm.example"
    email_from_name: str = "Engagement Office"
    email_reply_to: str | None = None
    outbox_dir: Path | None = None
    """The folder the outbox sender writes to; defaults to run_dir/outbox."""
    sendgrid_template_ids: dict[EmailKind, str] = {}
    """Dynamic template ids by email kind (env SENDGRID_TEMPLATE_IDS as a JSON object, e.g.
    {"nda_request": "d-..."}); a kind listed here is rendered by SendGrid from the facts."""
    email_reconciliation_window: timedelta = timedelta(minutes=10)
    """How long a send of unknown outcome waits for a delivery event before it is sent again
    (seconds or ISO 8601, e.g. 600 or PT10M)."""
    sendgrid_webhook_public_key: str | None = None
    """The Signed Event Webhook's verification key (base64 DER, as SendGrid shows it); the webhook
    refuses to start without it."""
    webhook_host: str = "127.0.0.1"
    webhook_port: int = 8088
    webhook_max_age: timedelta = timedelta(minutes=10)
    """A signed event post older than this (by its signed timestamp) is refused as a possible replay."""
    scim_tokens: dict[str, SecretStr] = {}
    """Bearer tokens of the clients' SCIM services by token_ref (env SCIM_TOKENS as a JSON object)."""
    scim_tokens_file: Path | None = None
    """A JSON file mapping token_ref to bearer token, read by the worker at start."""
    scim_timeout_seconds: float = 10.0
    screening_provider: Literal["manual", "checkr"] = "manual"
    """The firm-wide way background checks run, for specs without ``screening`` (chosen at start)."""
    checkr_base_url: str = "https://api.checkr.com"
    """The screening provider's API (Checkr's staging: https://api.checkr-staging.com)."""
    checkr_api_key: SecretStr | None = None
    """Checkr's secret API key: it authenticates the worker's calls and keys the webhook signatures."""
    checkr_timeout_seconds: float = 10.0
    screening_jurisdictions_file: Path | None = None
    """Jurisdiction -> permitted package table (YAML or JSON); unset: config/screening_jurisdictions.yaml."""
    provider_webhook_host: str = "127.0.0.1"
    provider_webhook_port: int = 8089
    certification_key: SecretStr | None = None
    """Signs the access certification links (HMAC-SHA256; at least 32 bytes): the worker signs them into
    the review email, the certification page checks them. Unset: no certification email can be sent."""
    certification_base_url: str = "http://127.0.0.1:8087"
    """Where the IAM owner opens a certification link (the certification page, as the client reaches it)."""
    certification_host: str = "127.0.0.1"
    certification_port: int = 8087
    certification_trusted_proxies: str = "127.0.0.1,::1"
    """The reverse proxies in front of the page (comma-separated addresses or networks, e.g. 10.0.0.0/8):
    from them, X-Forwarded-For names the client whose attempts the rate limit counts; from any other
    sender the header is ignored, so nobody picks their own count, nor empties another's."""
    allow_short_durations: bool = False
    """Accept spec durations below their floors (README "Limits"), down to one second: for demos and
    tests only; a real contract keeps reminders at most hourly, notice at least a day, ..."""

    def certification_links(self) -> LinkSigner | None:
        if self.certification_key is None:
            return None
        return LinkSigner(self.certification_key.get_secret_value().encode(), self.certification_base_url)

    def resolved_outbox_dir(self) -> Path:
        return self.outbox_dir or self.run_dir / "outbox"

    def sendgrid_template_table(self) -> dict[str, str]:
        """Dynamic template ids by email kind value, as SendGridSender takes them."""
        return {kind.value: template_id for kind, template_id in self.sendgrid_template_ids.items()}

    def scim_token_table(self) -> dict[str, str]:
        tokens = {name: secret.get_secret_value() for name, secret in self.scim_tokens.items()}
        if self.scim_tokens_file is not None:
            tokens.update(json.loads(self.scim_tokens_file.read_text(encoding="utf-8")))
        return tokens

    # --- Connecting to Temporal (adapters/temporal_connection.py). Each of these, when set, overrides
    # the Temporal client profile (TOML file + TEMPORAL_* environment, temporalio.envconfig).
    temporal_profile: str | None = None
    """The profile of the Temporal client config file to use (env TEMPORAL_PROFILE; "default" when unset)."""
    temporal_config_file: Path | None = None
    """The Temporal client config file (TOML); unset: TEMPORAL_CONFIG_FILE or the CLI's default location."""
    temporal_api_key: SecretStr | None = None
    """An API key for Temporal (sent as a bearer token); setting one turns TLS on."""
    temporal_tls: bool | None = None
    """Force TLS on (true) or off (false); unset: as the profile says (on with an API key or a certificate)."""
    temporal_tls_server_ca_cert_path: Path | None = None
    temporal_tls_client_cert_path: Path | None = None
    temporal_tls_client_key_path: Path | None = None
    temporal_tls_server_name: str | None = None
    temporal_connect_timeout: timedelta = timedelta(seconds=10)
    """How long to wait for the Temporal frontend before giving up with a one-line error."""
    cli_worker_wait: timedelta = timedelta(seconds=10)
    """How long a CLI query or command waits for a worker before saying none answered (exit 4)."""

    # --- Payload encryption (adapters/codec.py) and the codec server (codec_server.py).
    payload_keys: dict[str, SecretStr] = {}
    """AES keys by key id, base64 (env PAYLOAD_KEYS as a JSON object); set, every payload is encrypted."""
    payload_keys_file: Path | None = None
    """A JSON file of key id -> base64 key, merged over PAYLOAD_KEYS (keep it out of the image)."""
    payload_key_id: str | None = None
    """The key id new payloads are encrypted with; older keys stay listed so old histories decrypt."""
    codec_host: str = "127.0.0.1"
    codec_port: int = 8081
    codec_auth_token: SecretStr | None = None
    """The bearer token the codec server requires of every caller; it refuses to start without one."""
    codec_cors_origins: str = "http://localhost:8233,http://localhost:8080"
    """Comma-separated origins of the Temporal UIs allowed to call the codec server from a browser."""
    codec_max_body_bytes: int = 4 * 1024 * 1024
    codec_session_lifetime: timedelta = timedelta(hours=8)
    """How long a browser session begun at the codec server's /login lasts."""
    """A larger /encode or /decode body is refused (413) before it is read whole."""

    def payload_key_table(self) -> dict[str, str]:
        """PAYLOAD_KEYS as plain base64 strings (the file, if any, is read by adapters.codec.Keyring.load)."""
        return {key_id: secret.get_secret_value() for key_id, secret in self.payload_keys.items()}

    def codec_cors_origin_list(self) -> list[str]:
        return [origin.strip() for origin in self.codec_cors_origins.split(",") if origin.strip()]

    # --- Telemetry (adapters/telemetry.py): the worker's metrics, traces and log format.
    metrics_port: int | None = None
    """Serve Prometheus metrics (Temporal's and the product's) on this port; unset: no metrics endpoint."""
    metrics_host: str = "127.0.0.1"
    """The address the metrics endpoint binds (0.0.0.0 in a container)."""
    metrics_interval: timedelta = timedelta(seconds=30)
    """How often the gauges (engagements by phase, emails by state, alerts) are refreshed."""
    tracing_enabled: bool = False
    """OpenTelemetry spans for workflows, activities, updates and queries (OTEL_EXPORTER_OTLP_ENDPOINT to export)."""
    log_format: Literal["text", "json"] = "text"
    """``json``: one JSON object per log line."""

    # --- The worker's own limits (worker.py, Temporal's Worker options). Each cached workflow keeps its
    # state and sandbox in memory; a workflow not in the cache is replayed from its history when it
    # next has work or a query (a long-lived engagement parked in delivery pays that once per wake-up).
    worker_max_cached_workflows: int = Field(default=100, ge=0)
    """How many workflow runs the worker keeps in memory (about 0.4 MB each, measured); 0 turns the cache
    off. Temporal's default is 1000: with thousands of engagements parked that is about 500 MB, where
    100 held the worker at 180 MB from 300 to 1,500 parked (measured), at the price of a replay (about 100 ms)
    when an engagement out of the cache next wakes. ``status`` reads the run's memo, so it costs no
    replay (bench/README.md "parked"). Raise it on a worker with memory to spare, or when more than
    this many engagements are busy at once (each would be replayed at each of its workflow tasks)."""
    worker_max_concurrent_workflow_tasks: int = Field(default=100, ge=1)
    """How many workflow tasks (activations, queries) the worker runs at once (Temporal's default)."""
    worker_max_concurrent_activities: int = Field(default=100, ge=1)
    """How many activities (SQL, SCIM, email) the worker runs at once (Temporal's default)."""
    worker_sticky_timeout: timedelta = Field(
        default=timedelta(seconds=10), ge=timedelta(seconds=1), le=timedelta(minutes=5)
    )
    """How long a task for an engagement this worker holds in its cache waits for this worker before
    any worker may take it (Temporal's sticky schedule-to-start timeout, 10 s by default). After a
    worker dies, each engagement it held waits this long before another worker replays it and goes
    on: a revocation due at that moment included."""

    scim_max_clients: int = Field(default=256, ge=1)
    """How many clients' SCIM directories (an HTTP client each) the worker keeps open; beyond that the
    least recently used is closed, and opened again when its client next needs it."""

    # --- Migrations (adapters/migration_lock.py).
    migration_database_url: str | None = None
    """The schema owner's URL, for Alembic only (the worker migrates with it, under an advisory lock);
    unset: DATABASE_URL. Lets DATABASE_URL be a role with data rights only."""
