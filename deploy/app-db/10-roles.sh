#!/bin/sh
# Runs once, when app-db's data volume is first initialised (postgres image, docker-entrypoint-initdb.d).
# Two roles: engagements_owner owns the schema and is the only one that runs migrations (DDL);
# engagements_app is what the worker and the webhook connect as: data only (SELECT, INSERT, UPDATE,
# DELETE on the tables the owner creates), no DDL, no TRUNCATE. The audit log's trigger still
# refuses UPDATE and DELETE on audit_log for everyone.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v owner_password="$APP_OWNER_PASSWORD" -v app_password="$APP_PASSWORD" <<'SQL'
CREATE ROLE engagements_owner LOGIN PASSWORD :'owner_password';
CREATE ROLE engagements_app LOGIN PASSWORD :'app_password';
ALTER DATABASE engagements OWNER TO engagements_owner;
REVOKE ALL ON DATABASE engagements FROM PUBLIC;
GRANT CONNECT ON DATABASE engagements TO engagements_app;
ALTER SCHEMA public OWNER TO engagements_owner;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO engagements_app;
ALTER DEFAULT PRIVILEGES FOR ROLE engagements_owner IN SCHEMA public
  GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO engagements_app;
ALTER DEFAULT PRIVILEGES FOR ROLE engagements_owner IN SCHEMA public
  GRANT USAGE, SELECT ON SEQUENCES TO engagements_app;
SQL
