"""audit chain: hash-chained audit log, the owner and application roles, acknowledged alerts

- ``audit_log.prev_hash``/``row_hash`` (``adapters/audit_chain.py``), existing entries chained in
  insertion order, one successor per link (a unique index), TRUNCATE refused by a trigger too;
- the roles of ``deploy/app-db/10-roles.sh``, created only if missing (NOLOGIN: logging in is an
  operator's decision): ``engagements_owner`` owns the audit log, ``engagements_app`` may only
  SELECT and INSERT on it: no UPDATE, DELETE, TRUNCATE, TRIGGER, and not being its owner, no ALTER
  (so it cannot disable the trigger either);
- ``admin_alerts`` acknowledgement columns.
"""

import sqlalchemy as sa
from alembic import op

from adapters.audit_chain import GENESIS, link

revision: str = "0006"
down_revision: str | None = "0005"

OWNER = "engagements_owner"
APP = "engagements_app"


def _create_role(name: str) -> None:
    # Roles are cluster-wide: another database (or a concurrent test run) may have made it already.
    op.execute(
        f"""
        DO $$
        BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{name}') THEN
                CREATE ROLE {name} NOLOGIN;
            END IF;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END
        $$
        """
    )


def _chain_existing_entries() -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.text("SELECT entry_id, engagement_id, event_key, at, actor, action, details FROM audit_log ORDER BY entry_id")
    ).mappings()
    heads: dict[str, str] = {}
    for row in rows.all():
        previous = heads.get(row["engagement_id"], GENESIS)
        current = link(previous, row)
        bind.execute(
            sa.text("UPDATE audit_log SET prev_hash = :p, row_hash = :h WHERE entry_id = :id"),
            {"p": previous, "h": current, "id": row["entry_id"]},
        )
        heads[row["engagement_id"]] = current


def upgrade() -> None:
    op.add_column("audit_log", sa.Column("prev_hash", sa.String(64), nullable=True))
    op.add_column("audit_log", sa.Column("row_hash", sa.String(64), nullable=True))
    # The append-only trigger refuses UPDATE: lifted inside this transaction only, to chain what exists.
    op.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
    _chain_existing_entries()
    op.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only")
    op.alter_column("audit_log", "prev_hash", nullable=False)
    op.alter_column("audit_log", "row_hash", nullable=False)
    op.create_unique_constraint("audit_log_one_successor", "audit_log", ["engagement_id", "prev_hash"])
    op.execute(
        "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_is_append_only()"
    )

    for role in (OWNER, APP):
        _create_role(role)
    # The owner owns the audit log when this migration may hand it over (as a superuser, or as the
    # owner itself, which is how the compose stack runs migrations); otherwise it stays as it is.
    op.execute(
        f"""
        DO $$
        BEGIN
            IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
                ALTER TABLE audit_log OWNER TO {OWNER};
                ALTER FUNCTION audit_log_is_append_only() OWNER TO {OWNER};
            END IF;
        END
        $$
        """
    )
    op.execute(f"REVOKE ALL ON audit_log FROM PUBLIC, {APP}")
    op.execute(f"GRANT SELECT, INSERT ON audit_log TO {APP}")
    data_tables = [
        "engagements",
        "engineers",
        "access_grants",
        "kt_documents",
        "handover_sessions",
        "transition_questions",
        "email_outbox",
        "email_events",
        "admin_alerts",
        "identity_grants",
        "screening_events",
    ]
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {', '.join(data_tables)} TO {APP}")
    op.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {APP}")

    op.add_column("admin_alerts", sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("admin_alerts", sa.Column("acknowledged_by", sa.Text(), nullable=True))
    op.add_column("admin_alerts", sa.Column("acknowledged_by_source", sa.String(20), nullable=True))
    op.add_column("admin_alerts", sa.Column("acknowledgement", sa.Text(), nullable=True))
    op.create_index("admin_alerts_open", "admin_alerts", ["raised_at"], postgresql_where="acknowledged_at IS NULL")


def downgrade() -> None:
    op.drop_index("admin_alerts_open", table_name="admin_alerts")
    for column in ("acknowledgement", "acknowledged_by_source", "acknowledged_by", "acknowledged_at"):
        op.drop_column("admin_alerts", column)
    op.execute("DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log")
    op.drop_constraint("audit_log_one_successor", "audit_log", type_="unique")
    op.drop_column("audit_log", "row_hash")
    op.drop_column("audit_log", "prev_hash")
    # The roles stay: they are cluster-wide and may serve other databases.
