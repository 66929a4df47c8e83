#!/bin/sh
# Runs in the temporalio/admin-tools image (service temporal-schema): creates
# Temporal's two PostgreSQL databases and brings both schemas to the version
# this admin-tools release ships. Safe to run on every `docker compose up`:
# `create` and `setup-schema -v 0.0` leave an existing database alone and
# `update-schema` only applies what is missing.
#
# temporal-sql-tool reads SQL_PLUGIN, SQL_HOST, SQL_PORT, SQL_USER and
# SQL_PASSWORD from the environment (set in compose.yaml).
set -eu

: "${SQL_HOST:?}" "${SQL_PORT:?}" "${SQL_PASSWORD:?}"
SCHEMA_DIR="${TEMPORAL_HOME:-/etc/temporal}/schema/postgresql/v12"

echo "waiting for PostgreSQL at ${SQL_HOST}:${SQL_PORT}"
until nc -z "$SQL_HOST" "$SQL_PORT"; do
    sleep 1
done

for pair in temporal:temporal temporal_visibility:visibility; do
    database=${pair%%:*}
    schema=${pair##*:}
    echo "database ${database}: create, setup-schema, update-schema (${schema})"
    temporal-sql-tool --db "$database" create
    temporal-sql-tool --db "$database" setup-schema -v 0.0
    temporal-sql-tool --db "$database" update-schema -d "${SCHEMA_DIR}/${schema}/versioned"
done
echo "PostgreSQL schemas are up to date"
