#!/usr/bin/env bash
# Runs every test suite that exists, each with its own runner, then prints one
# summary that ends with the runners' own closing lines. Fails when a suite fails
# or when a suite that exists ran no test.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
LOG_DIR=$ROOT/build/test-logs
mkdir -p "$LOG_DIR"
HA_PY=$ROOT/.venv/ha/bin/python
ADDON_PY=$ROOT/.venv/addon/bin/python
export PYTHONDONTWRITEBYTECODE=1

names=(); results=(); closings=()

# run_suite NAME CLOSING_REGEX COMMAND...
run_suite() {
  local name=$1 pattern=$2; shift 2
  local log=$LOG_DIR/$name.log rc closing
  printf '\n==== %s: %s\n' "$name" "$*"
  "$@" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  closing=$(grep -E "$pattern" "$log" | tail -n 1)
  if [ -z "$closing" ]; then
    closing="$name: no test ran"
    rc=1
  elif grep -qE 'no tests ran|0 tests failed out of 0' <<<"$closing"; then
    rc=1
  fi
  names+=("$name"); results+=("$rc"); closings+=("$closing")
}

# pytest's closing line, with or without -q's '=' borders: '425 passed, 2 warnings in 53.0s'
PYTEST_CLOSE='^=* *([0-9]+ [a-z]+(, )?)+ in [0-9.]+s|no tests ran in [0-9.]+s'

run_suite lint '^lint: [0-9]+ passed, [0-9]+ failed$' scripts/lint.sh
if [ -f firmware/host/CMakeLists.txt ]; then
  run_suite firmware 'tests passed, [0-9]+ tests? failed out of [0-9]+' \
    ctest --test-dir build/host --output-on-failure -j2 --timeout 300
fi
if [ -f tests/test_vectors.py ]; then
  run_suite vectors "$PYTEST_CLOSE" "$ADDON_PY" -m pytest -q -p no:cacheprovider tests/test_vectors.py
fi
if [ -d tests/integration ]; then
  run_suite integration "$PYTEST_CLOSE" "$HA_PY" -m pytest -q -p no:cacheprovider tests/integration \
    --cov=custom_components/esp_mcp_bridge --cov-report=term-missing:skip-covered
fi
if [ -d mcp_addon/tests ]; then
  run_suite addon "$PYTEST_CLOSE" "$ADDON_PY" -m pytest -q -p no:cacheprovider mcp_addon/tests
fi
if [ -d tests/e2e ]; then
  run_suite e2e "$PYTEST_CLOSE" "$ADDON_PY" -m pytest -q -p no:cacheprovider -m e2e tests/e2e
fi

passed=0; failed=0
printf '\n==== summary\n'
for i in "${!names[@]}"; do
  if [ "${results[$i]}" -eq 0 ]; then passed=$((passed + 1)); s=PASS; else failed=$((failed + 1)); s=FAIL; fi
  printf '%-12s %s\n' "${names[$i]}" "$s"
done
printf 'suites: %d passed, %d failed\n' "$passed" "$failed"
for i in "${!names[@]}"; do printf '%s\n' "${closings[$i]}"; done
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
