#!/usr/bin/env bash
# Installs the project with its test dependencies into .venv (once), lints (ruff: pyflakes,
# pycodestyle, bugbear, import order) and type-checks (mypy, configured in setup.cfg) the tree, then
# runs the whole suite on SQLite and PostgreSQL. Any lint or type finding fails the run. Extra
# arguments go to pytest; SKIP_LINT=1 skips the two checks (for quick targeted runs only).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[postgres,test,bench]'
if [ "${SKIP_LINT:-0}" != 1 ]; then
  .venv/bin/python -m ruff check --quiet .
  .venv/bin/python -m mypy
fi
exec .venv/bin/python -m pytest -n 2 "$@"
