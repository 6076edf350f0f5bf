#!/usr/bin/env bash
# Creates the PostgreSQL role and database of jsm-scim-bridge (setup.sql) and prints the setting
# to put into /etc/jsm-scim/jsm-scim.env. Then run `jsm-scim db upgrade` once with that setting.
#
#   sudo -u postgres deploy/postgresql/setup.sh [ROLE [DATABASE]]        # defaults: jsm_scim jsm_scim
#
# JSM_SCIM_DB_PASSWORD: the role's password (default: a random one; URL-safe characters only, so
# the printed URL needs no escaping). PGHOST, PGPORT, PGUSER, PGDATABASE: where psql connects, as
# usual; the printed URL names PGHOST (default 127.0.0.1) and PGPORT (default 5432).
# Idempotent: run again to set a new password; an existing database is kept.
set -euo pipefail
role=${1:-jsm_scim}
db=${2:-jsm_scim}
password=${JSM_SCIM_DB_PASSWORD:-$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')}
for value in "$role" "$db"; do
  [[ $value =~ ^[a-z_][a-z0-9_]{0,62}$ ]] || { echo "error: role and database names: lower-case letters, digits and _ ($value)" >&2; exit 2; }
done
[[ $password =~ ^[A-Za-z0-9._~-]{16,}$ ]] \
  || { echo "error: JSM_SCIM_DB_PASSWORD: at least 16 URL-safe characters (A-Z a-z 0-9 . _ ~ -)" >&2; exit 2; }

psql -X -q -v ON_ERROR_STOP=1 -v role="$role" -v db="$db" -v password="$password" \
     -d "${PGDATABASE:-postgres}" -f "$(dirname "$0")/setup.sql" >/dev/null
echo "role $role and database $db ready; add to /etc/jsm-scim/jsm-scim.env:" >&2
echo "JSM_SCIM_DATABASE_URL=postgresql://$role:$password@${PGHOST:-127.0.0.1}:${PGPORT:-5432}/$db"
