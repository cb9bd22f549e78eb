#!/bin/sh
# One-shot job (temporalio/admin-tools): create Temporal's two databases if missing and bring their
# schemas to the version this admin-tools image ships. Idempotent: a restart of the stack re-runs it
# and it only applies what is missing. Pin admin-tools to the same version as temporalio/server.
set -eu
SQL="temporal-sql-tool --plugin postgres12 --ep ${POSTGRES_SEEDS} -p ${DB_PORT} -u ${POSTGRES_USER} --pw ${POSTGRES_PWD}"
SCHEMA=/etc/temporal/schema/postgresql/v12
for db in temporal temporal_visibility; do
  $SQL --db "$db" create || true  # already there after the first run
done
$SQL --db temporal setup-schema -v 0.0
$SQL --db temporal update-schema -d "$SCHEMA/temporal/versioned"
$SQL --db temporal_visibility setup-schema -v 0.0
$SQL --db temporal_visibility update-schema -d "$SCHEMA/visibility/versioned"
echo "temporal schema ready"
