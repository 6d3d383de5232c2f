#!/usr/bin/env bash
# Set up everything on a fresh machine and run one job.
#   bash deploy/dev.sh demo   — the main job: the seed scenario on the embedded SQLite default
#   bash deploy/dev.sh test   — lint, type-check and every default test (SQLite, PostgreSQL, Kafka broker), in
#                               parallel workers, then the timing-sensitive ones (marked `alone`) by themselves
#   bash deploy/dev.sh long   — the long suites (marked `long`)
#   bash deploy/dev.sh bench  — the benchmark table (tests/perf)
#   bash deploy/dev.sh network up [--hub]|env CODE|status|down — three agency nodes on Tansu + local PostgreSQL
#     (deploy/local; --hub: in hub mode, with the hub (active/standby) and the portal)
# Each installs from deploy/requirements*.lock; after changing a dependency in pyproject.toml run bash deploy/lock.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

setup() {
  if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
  fi
  # the pinned, hashed versions CI tested (deploy/lock.sh makes them from pyproject.toml); `test` adds the test extra
  local kind=${1:-base} lock=deploy/requirements.lock
  if [ "$kind" = test ]; then lock=deploy/requirements-test.lock; fi
  # reinstall only when the dependency list or its lock changed
  local stamp=.venv/.flagledger-deps
  local want
  want=$(cat pyproject.toml "$lock" | sha256sum | cut -d' ' -f1)-$kind
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    .venv/bin/python -m pip install -q --upgrade pip >/dev/null
    .venv/bin/python -m pip install -q --require-hashes -r "$lock"
    .venv/bin/python -m pip install -q --no-deps -e .
    # a dependency added to pyproject.toml but not yet locked would be missing: stop and say how to fix it
    if ! .venv/bin/python -m pip check >/dev/null; then
      .venv/bin/python -m pip check >&2 || true
      echo "$lock does not cover pyproject.toml: run bash deploy/lock.sh" >&2
      exit 7
    fi
    echo "$want" > "$stamp"
  fi
}

ensure_postgres() {
  if ! .venv/bin/python -c "import psycopg; psycopg.connect('host=127.0.0.1 port=5432 user=postgres dbname=postgres', connect_timeout=3).close()" 2>/dev/null; then
    echo "starting PostgreSQL…" >&2
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start || true
    sleep 2
  fi
}

ensure_browser() {
  if [ -f deploy/browser-deps.sh ]; then
    bash deploy/browser-deps.sh
  fi
}

ensure_hsm() {
  if [ -f deploy/hsm-deps.sh ]; then
    bash deploy/hsm-deps.sh
  fi
}

case "${1:-}" in
  demo)
    setup base
    shift
    exec .venv/bin/flagledger demo "$@"
    ;;
  test)
    setup test
    ensure_postgres
    ensure_browser
    ensure_hsm
    .venv/bin/ruff check ledger projections consumers tests deploy
    .venv/bin/ruff format --check ledger projections consumers tests deploy
    .venv/bin/mypy
    .venv/bin/lint-imports --no-cache
    # the suite in worker processes (pytest-xdist; FLAGLEDGER_TEST_WORKERS, default 3 — tests wait on
    # subprocesses, PostgreSQL and the broker as much as on the CPU), then the few that judge timing under load
    # (marked `alone`) with nothing running beside them
    status=0
    .venv/bin/python -m pytest -q -m "not long and not alone" -n "${FLAGLEDGER_TEST_WORKERS:-3}" \
      --dist worksteal --durations=10 "${@:2}" || status=$?
    alone=0
    .venv/bin/python -m pytest -q -m "alone and not long" "${@:2}" || alone=$?
    [ "$alone" -eq 5 ] && alone=0 # (none of them among the tests asked for)
    [ "$status" -eq 5 ] && status=0
    if [ "$status" -ne 0 ] || [ "$alone" -ne 0 ]; then exit 1; fi
    ;;
  long)
    setup test
    ensure_postgres
    exec .venv/bin/python -m pytest -q -m long "${@:2}"
    ;;
  bench)
    setup test
    ensure_postgres
    exec .venv/bin/python -m tests.perf.bench "${@:2}"
    ;;
  network)
    setup test
    ensure_postgres
    exec .venv/bin/python deploy/local/network.py "${@:2}"
    ;;
  *)
    echo "usage: bash deploy/dev.sh demo|test|long|bench|network [args…]" >&2
    exit 2
    ;;
esac
