#!/usr/bin/env bash
# Idempotent set-up shared by every make target: Debian packages, the two Python
# environments (Home Assistant's and the add-on's, kept apart on purpose) and the
# firmware host build. A second run only checks and returns in seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV_DIR=${VENV_DIR:-$ROOT/.venv}
BUILD_DIR=${BUILD_DIR:-$ROOT/build/host}
log() { printf '[bootstrap] %s\n' "$*"; }

# --- Debian packages ---------------------------------------------------------
APT_PACKAGES=(mosquitto mosquitto-clients libmosquitto-dev libcjson-dev libcmocka-dev
              clang libclang-rt-14-dev valgrind openssl pkg-config chromium debootstrap g++)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" -ne 0 ]; then
    echo "Missing Debian packages. Install them with:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# A package install may start the system broker; tests start their own on free ports.
if command -v systemctl >/dev/null 2>&1; then systemctl disable --now mosquitto >/dev/null 2>&1 || true; fi

# --- Python 3.13 -------------------------------------------------------------
find_python313() {
  local c
  for c in python3.13 "$(command -v pyenv >/dev/null 2>&1 && pyenv root)"/versions/3.13*/bin/python3.13 \
           "$HOME"/.pyenv/versions/3.13*/bin/python3.13 /usr/bin/python3.13 /usr/local/bin/python3.13; do
    [ -n "$c" ] || continue
    if "$c" -c 'import sys; assert sys.version_info[:2] == (3, 13)' >/dev/null 2>&1; then
      command -v "$c" 2>/dev/null || echo "$c"; return 0
    fi
  done
  return 1
}
PY313=$(find_python313) || {
  echo "Python 3.13 is required (Home Assistant 2025.4 runs on it)." >&2
  echo "Install it, e.g. 'pyenv install 3.13.0' or your distribution's python3.13 + python3.13-venv." >&2
  exit 1
}

# make_venv NAME REQUIREMENTS...: create .venv/NAME once; when the requirement files
# change, install into it again (pip only adds what is missing, so this takes seconds).
make_venv() {
  local name=$1; shift
  local dir=$VENV_DIR/$name stamp hash
  hash=$(cat "$@" | sha256sum | cut -d' ' -f1)
  stamp=$dir/.requirements.sha256
  if [ -x "$dir/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$hash" ]; then
    return 0
  fi
  if [ ! -x "$dir/bin/python" ]; then
    log "creating Python environment $name (the first run takes a few minutes)"
    "$PY313" -m venv "$dir"
    "$dir/bin/python" -m pip install -q --upgrade pip
  else
    log "updating Python environment $name (requirements changed)"
  fi
  local args=()
  for f in "$@"; do args+=(-r "$f"); done
  "$dir/bin/python" -m pip install -q "${args[@]}"
  echo "$hash" >"$stamp"
}
make_venv ha requirements/ha.txt
make_venv addon mcp_addon/requirements.txt requirements/addon-dev.txt
make_venv esphome requirements/esphome.txt

# --- the newest Home Assistant: Python 3.14 in a Debian root ------------------
# Debian 12 has no Python >= 3.14.2; Debian's newest suite does. debootstrap makes a
# minimal root with it (about a minute, once per machine: it lives outside the
# checkout); scripts/in_sid.sh runs the lane's programs in it with the checkout and
# /tmp at the same paths.
source scripts/sid_env.sh
# Python 3.14 and what builds the voice pipeline's C++ extensions (pymicro-vad and
# pyspeex-noise have no wheel for 3.14 at the versions HA pins; HA's frontend needs
# assist_pipeline importable).
SID_PACKAGES="python3.14,python3.14-venv,python3.14-dev,g++,ca-certificates"
make_sid_root() {
  if [ ! -f "$SID_ROOT/.ready" ]; then
    local tmp=$SID_ROOT.partial suite
    rm -rf "$tmp"
    mkdir -p "$(dirname "$SID_ROOT")"
    log "creating the Debian root with Python 3.14 for the newest Home Assistant"
    for suite in sid testing; do
      if debootstrap --variant=minbase --include="$SID_PACKAGES" \
          "$suite" "$tmp" http://deb.debian.org/debian >"$tmp.log" 2>&1; then
        break
      fi
      log "debootstrap of $suite failed (see $tmp.log)"; rm -rf "$tmp"
    done
    [ -x "$tmp/usr/bin/python3.14" ] || { echo "no Debian root with Python 3.14" >&2; exit 1; }
    rm -f "$tmp.log"
    mv "$tmp" "$SID_ROOT"
    touch "$SID_ROOT/.ready"
  fi
  # Name resolution and the CA bundle as on this machine (cheap, and they may change).
  cp /etc/ssl/certs/ca-certificates.crt "$SID_ROOT/etc/ssl/certs/ca-certificates.crt"
  cp /etc/resolv.conf /etc/hosts "$SID_ROOT/etc/"
  # A root made before the package list grew gets the rest with apt (mirrors may serve
  # a snapshot whose Release file is past its Valid-Until, as debootstrap accepts).
  if [ ! -x "$SID_ROOT/usr/bin/g++" ] || [ ! -e "$SID_ROOT/usr/include/python3.14/Python.h" ]; then
    log "adding ${SID_PACKAGES//,/ } to the Debian root"
    scripts/in_sid.sh /bin/bash -c 'apt-get -o Acquire::Check-Valid-Until=false update -q &&
      DEBIAN_FRONTEND=noninteractive apt-get -o Acquire::Check-Valid-Until=false install -y -q \
        --no-install-recommends "$@"' apt ${SID_PACKAGES//,/ } >"$SID_ROOT.apt.log" 2>&1 ||
      { echo "apt in the Debian root failed (see $SID_ROOT.apt.log)" >&2; exit 1; }
  fi
}

# make_sid_venv NAME REQUIREMENTS...: make_venv's twin inside the Debian root. After the
# listed requirements it installs what `hass --skip-pip` needs for the integrations the
# harness loads, pinned by Home Assistant's own package constraints.
make_sid_venv() {
  local name=$1; shift
  local dir=$VENV_DIR/$name stamp hash py
  hash=$({ cat "$@" scripts/ha_requirements.py; echo "$HA_DOMAINS $SID_PACKAGES"; } | sha256sum | cut -d' ' -f1)
  stamp=$dir/.requirements.sha256
  py=$dir/bin/python
  if [ -e "$py" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$hash" ]; then
    return 0
  fi
  log "installing Python environment $name (Python 3.14, Home Assistant; a few minutes)"
  [ -e "$py" ] || scripts/in_sid.sh python3.14 -m venv "$dir"
  scripts/in_sid.sh "$py" -m pip install -q --upgrade pip
  local args=()
  for f in "$@"; do args+=(-r "$f"); done
  scripts/in_sid.sh "$py" -m pip install -q "${args[@]}"
  scripts/in_sid.sh "$py" scripts/ha_requirements.py $HA_DOMAINS >"$dir/skip-pip-requirements.txt"
  scripts/in_sid.sh "$py" -m pip install -q -r "$dir/skip-pip-requirements.txt" \
    -c "$(echo "$dir"/lib/python3.*/site-packages/homeassistant/package_constraints.txt)"
  echo "$hash" >"$stamp"
}
# The domains of the configuration the harness writes (harness/homeassistant.py), and
# those HA's onboarding sets up (onboarding/views.py) as for every new user.
HA_DOMAINS="homeassistant http recorder history logbook api websocket_api frontend config logger mqtt lovelace
  google_translate met radio_browser shopping_list"
make_sid_root
make_sid_venv ha-newest requirements/ha-newest.txt
make_sid_venv ha-newest-test requirements/ha-newest-test.txt

# --- MCP Inspector (CLI mode) and playwright-core (drives Debian's chromium) ---
if [ -f package.json ] && { [ ! -d node_modules/@modelcontextprotocol/inspector ] ||
                            [ ! -d node_modules/playwright-core ]; }; then
  log "installing npm tools"
  npm ci --no-audit --no-fund --loglevel=error
fi

# --- firmware host build -----------------------------------------------------
if [ -f firmware/host/CMakeLists.txt ]; then
  if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
    cmake -S firmware/host -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Debug >/dev/null
  fi
  cmake --build "$BUILD_DIR" -j"$(nproc)" -- --no-print-directory >/dev/null
fi
log "ready"
