#!/usr/bin/env bash
# One database and one login role per agency; passwords from the Compose secrets. Runs once, on an empty volume.
set -euo pipefail
for agency in a b sc; do
  password=$(cat "/run/secrets/node_${agency}_db_password")
  psql -v ON_ERROR_STOP=1 --username postgres --dbname postgres \
    -v role="agency_${agency}" -v password="$password" <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'password';
CREATE DATABASE :"role" OWNER :"role";
REVOKE ALL ON DATABASE :"role" FROM PUBLIC;
SQL
done
