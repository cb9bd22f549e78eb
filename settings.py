"""Settings for the worker and the CLI, read from the environment (or a .env file) when asked for.

Secrets (the SendGrid key, the clients' SCIM tokens) live here and in the worker only: workflows
carry references to them, never the values.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


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
    scim_tokens: dict[str, SecretStr] = {}
    """Bearer tokens of the clients' SCIM services by token_ref (env SCIM_TOKENS as a JSON object)."""
    scim_tokens_file: Path | None = None
    """A JSON file mapping token_ref to bearer token, read by the worker at start."""
    scim_timeout_seconds: float = 10.0

    def resolved_outbox_dir(self) -> Path:
        return self.outbox_dir or self.run_dir / "outbox"

    def scim_token_table(self) -> dict[str, str]:
        tokens = {name: secret.get_secret_value() for name, secret in self.scim_tokens.items()}
        if self.scim_tokens_file is not None:
            tokens.update(json.loads(self.scim_tokens_file.read_text(encoding="utf-8")))
        return tokens
