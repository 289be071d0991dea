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
HA_NEWEST_PY=("$ROOT/scripts/in_sid.sh" "$ROOT/.venv/ha-newest-test/bin/python")
ADDON_PY=$ROOT/.venv/addon/bin/python
# ha_version VENV: the Home Assistant release installed in a lane's environment.
ha_version() {
  local d
  d=$(ls -d "$ROOT/.venv/$1"/lib/python3.*/site-packages/homeassistant-*.dist-info 2>/dev/null | head -n 1)
  d=${d##*/homeassistant-}; echo "${d%.dist-info}"
}
HA_OLDEST=$(ha_version ha)
HA_NEWEST_UNIT=$(ha_version ha-newest-test)
HA_NEWEST=$(ha_version ha-newest)
export PYTHONDONTWRITEBYTECODE=1

names=(); results=(); closings=()

# run_suite NAME CLOSING_REGEX COMMAND...
run_suite() {
  local name=$1 pattern=$2; shift 2
  local log=$LOG_DIR/${name// /_}.log rc closing
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
  # Both ends of the supported range; on the newest, a deprecation warning raised from
  # the integration's own code fails the run (HA's logged ones: see the conftest).
  run_suite "integration HA $HA_OLDEST" "$PYTEST_CLOSE" "$HA_PY" -m pytest -q -p no:cacheprovider \
    tests/integration --cov=custom_components/esp_mcp_bridge --cov-report=term-missing:skip-covered
  run_suite "integration HA $HA_NEWEST_UNIT" "$PYTEST_CLOSE" "${HA_NEWEST_PY[@]}" -m pytest -q \
    -p no:cacheprovider -W "error::DeprecationWarning:custom_components" \
    -W "error::PendingDeprecationWarning:custom_components" tests/integration
fi
if [ -d mcp_addon/tests ]; then
  run_suite addon "$PYTEST_CLOSE" "$ADDON_PY" -m pytest -q -p no:cacheprovider mcp_addon/tests
fi
if [ -d tests/esphome ]; then
  run_suite esphome "$PYTEST_CLOSE" "$ADDON_PY" -m pytest -q -p no:cacheprovider tests/esphome
fi
if [ -d tests/e2e ]; then
  run_suite "e2e HA $HA_OLDEST" "$PYTEST_CLOSE" env HA_LANE=oldest \
    "$ADDON_PY" -m pytest -q -p no:cacheprovider -m e2e tests/e2e
  run_suite "e2e HA $HA_NEWEST" "$PYTEST_CLOSE" env HA_LANE=newest \
    "$ADDON_PY" -m pytest -q -p no:cacheprovider -m e2e tests/e2e
fi

passed=0; failed=0
printf '\n==== summary\n'
for i in "${!names[@]}"; do
  if [ "${results[$i]}" -eq 0 ]; then passed=$((passed + 1)); s=PASS; else failed=$((failed + 1)); s=FAIL; fi
  printf '%-28s %s\n' "${names[$i]}" "$s"
done
printf 'suites: %d passed, %d failed\n' "$passed" "$failed"
for i in "${!names[@]}"; do printf '%s\n' "${closings[$i]}"; done
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
