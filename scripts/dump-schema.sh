#!/usr/bin/env bash
# migrations/schema.sql: the schema the committed migrations make, as pg_dump prints it, so that
# every function's current body is one search away and a migration's effect shows in review.
#
#   scripts/dump-schema.sh [DATABASE_URL [OUTPUT]]
#                                          dump that database (default $GM_DBURL: graphile-migrate
#                                          runs this after migrating the shadow database, .gmrc)
#   scripts/dump-schema.sh --fresh         migrate a scratch database as `mailer migrate` does,
#                                          dump it, drop it (`npm run db:schema`)
#   scripts/dump-schema.sh --check         the same, but compare with migrations/schema.sql and
#                                          fail when it is stale (.ci/run)
#
# The scratch database is made on $SCHEMA_ADMIN_URL (default: the machine's PostgreSQL on
# 127.0.0.1:5432), whose pg_dump is used: pg_dump must be at least as new as the server, and the
# embedded PostgreSQL has none. `mailer migrate` never runs this: production needs no pg_dump.
#
# graphile_worker and graphile_migrate are the libraries' schemas, not ours. Owners are left out
# (whoever ran the migrations); privileges stay in, because who may execute which SECURITY
# DEFINER function is part of the design. pg_dump's volatile lines (its version, the random
# \restrict token, session SETs) are removed, so the same schema always gives the same file.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
schema="$root/migrations/schema.sql"
pg_bin=${PG_BIN:-/usr/lib/postgresql/15/bin}
pg_dump=$pg_bin/pg_dump
[ -x "$pg_dump" ] || pg_dump=pg_dump
# The project's Node (the `node` devDependency), which runs TypeScript.
node="$root/node_modules/.bin/node"
[ -x "$node" ] || node=node

dump() { # dump URL OUT
  "$pg_dump" --schema-only --no-owner --exclude-schema=graphile_worker \
    --exclude-schema=graphile_migrate "$1" |
    sed -E \
      -e '/^\\(un)?restrict /d' \
      -e '/^-- Dumped (from database|by pg_dump) version /d' \
      -e '/^SET /d' \
      -e "/^SELECT pg_catalog.set_config\('search_path', '', false\);$/d" |
    cat -s >"$2.tmp"
  mv "$2.tmp" "$2"
}

case "${1:-}" in
--fresh | --check)
  admin=${SCHEMA_ADMIN_URL:-postgresql://${PGUSER:-$(id -un)}@127.0.0.1:5432/postgres}
  name="mailer_schema_$$"
  url="${admin%/*}/$name"
  psql -X -q -v ON_ERROR_STOP=1 "$admin" -c "create database $name"
  trap 'psql -X -q "$admin" -c "drop database if exists $name with (force)" >/dev/null 2>&1' EXIT
  log=$(mktemp)
  if ! DATABASE_URL=$url LOG_LEVEL=warn "$node" "$root/src/cli/main.ts" migrate >"$log" 2>&1; then
    cat "$log" >&2
    echo "dump-schema: mailer migrate failed on a scratch database" >&2
    exit 1
  fi
  if [ "$1" = --fresh ]; then
    dump "$url" "$schema"
    echo "wrote migrations/schema.sql"
  else
    dump "$url" "$log"
    if ! diff -u "$schema" "$log" >"$log.diff"; then
      head -n 40 "$log.diff" >&2
      echo "migrations/schema.sql is stale: run npm run db:schema and commit it" >&2
      exit 1
    fi
  fi
  ;;
*)
  dump "${1:-${GM_DBURL:?usage: scripts/dump-schema.sh [DATABASE_URL [OUTPUT] | --fresh | --check]}}" \
    "${2:-$schema}"
  ;;
esac
