#!/usr/bin/env bash
# One database and one login role per agency, and the hub's and the portal's (one hub database for its active
# and standby replicas); passwords from the Compose secrets. Runs once, on an empty volume.
set -euo pipefail
for who in agency_a:node_a agency_b:node_b agency_sc:node_sc hub:hub portal:portal; do
  role=${who%%:*}
  password=$(cat "/run/secrets/${who#*:}_db_password")
  psql -v ON_ERROR_STOP=1 --username postgres --dbname postgres \
    -v role="$role" -v password="$password" <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'password';
CREATE DATABASE :"role" OWNER :"role";
REVOKE ALL ON DATABASE :"role" FROM PUBLIC;
SQL
done
