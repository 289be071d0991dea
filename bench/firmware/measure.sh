#!/usr/bin/env bash
# Re-run the firmware measurements (see measure.py for what and how).
set -euo pipefail
cd "$(dirname "$0")/../.."
exec .venv/addon/bin/python bench/firmware/measure.py "$@"
