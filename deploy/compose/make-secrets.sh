#!/usr/bin/env bash
# Generate the Compose network's secrets into deploy/compose/secrets/ (git-ignored), with openssl only.
# In production each agency generates its own signing and cipher keys in its own secret store; only the
# pseudonym key is shared by every agency of a deployment (it must be the same everywhere).
set -euo pipefail
cd "$(dirname "$0")"
umask 077
mkdir -p secrets
[ -f secrets/pseudonym_key ] || openssl rand -hex 32 > secrets/pseudonym_key
[ -f secrets/postgres_password ] || openssl rand -base64 24 | tr -d '/+=' > secrets/postgres_password
for node in node-a node-b node-sc; do
  mkdir -p "secrets/$node"
  [ -f "secrets/$node/signing_key" ] || openssl genpkey -algorithm ed25519 -out "secrets/$node/signing_key"
  [ -f "secrets/$node/cipher_key" ] || openssl rand -base64 32 > "secrets/$node/cipher_key"
  [ -f "secrets/$node/db_password" ] || openssl rand -base64 24 | tr -d '/+=' > "secrets/$node/db_password"
  [ -f "secrets/$node/admin_password" ] || openssl rand -base64 24 | tr -d '/+=' > "secrets/$node/admin_password"
done
for role in hub portal; do  # the linkage's roles: their database passwords (their keys they make themselves)
  mkdir -p "secrets/$role"
  [ -f "secrets/$role/db_password" ] || openssl rand -base64 24 | tr -d '/+=' > "secrets/$role/db_password"
done
# the containers run as uid 10001 (flagledger) and 999 (postgres): Compose mounts these files read-only
chmod 0444 secrets/*/* secrets/pseudonym_key secrets/postgres_password
echo "secrets written to $(pwd)/secrets (keep them out of git and back them up in your secret store)"
