#!/usr/bin/env bash
# Debian's SoftHSM2 for the PKCS#11 key-store tests (tests/support/softhsm.py, ledger/runtime/pkcs11_keystore.py):
# the tests make their own token in a temporary directory (SOFTHSM2_CONF), never in /var/lib/softhsm.
# Idempotent: returns at once when it is installed; without root the tests skip and say why.
set -euo pipefail
if dpkg-query -W -f='${Status}' softhsm2 2>/dev/null | grep -q "install ok installed"; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "hsm-deps: need root to install softhsm2 (or install it yourself); PKCS#11 tests will be skipped" >&2
  exit 0
fi
echo "installing softhsm2 from Debian's packages…" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends softhsm2 >/dev/null
