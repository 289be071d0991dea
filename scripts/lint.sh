#!/usr/bin/env bash
# ruff and mypy --strict over every Python part, each in the environment it ships with.
# Ends with one line 'lint: N passed, N failed' (one check per line below).
set -uo pipefail
cd "$(dirname "$0")/.."
HA_PY=.venv/ha/bin/python
ADDON_PY=.venv/addon/bin/python
checks=(
  "$HA_PY -m ruff check custom_components tests"
  "$HA_PY -m ruff format --check custom_components tests"
  "$HA_PY -m mypy"
  "$ADDON_PY -m ruff check mcp_addon bench harness firmware scripts"
  "$ADDON_PY -m ruff format --check mcp_addon bench harness firmware scripts"
  "$ADDON_PY -m mypy --strict harness bench tests/e2e"
  "cd firmware/host/tests/broker && ../../../../$ADDON_PY -m mypy --strict ."
  "cd mcp_addon && ../$ADDON_PY -m mypy"
)
passed=0; failed=0
for c in "${checks[@]}"; do
  echo "\$ $c"
  if (eval "$c"); then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAILED: $c"; fi
done
echo "lint: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
