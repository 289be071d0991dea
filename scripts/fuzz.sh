#!/usr/bin/env bash
# Fuzz the firmware's incoming-message parsing (mcp_core_on_message) with
# libFuzzer for a bounded time: scripts/fuzz.sh [SECONDS] (default 60).
# Builds with clang into build/fuzz; new interesting inputs go to
# build/fuzz/corpus, crashes to build/fuzz/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_TO_RUN=${1:-60}
case $SECONDS_TO_RUN in ''|*[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;; esac
BUILD=build/fuzz
command -v clang >/dev/null || { echo "clang is required (Debian: clang libclang-rt-14-dev)" >&2; exit 1; }
cmake -S firmware/host -B "$BUILD" -DCMAKE_C_COMPILER=clang -DMCP_BUILD_TESTS=OFF >/dev/null
cmake --build "$BUILD" --target fuzz_on_message -- --no-print-directory >/dev/null
mkdir -p "$BUILD/corpus" "$BUILD/artifacts"
exec "$BUILD/fuzz/fuzz_on_message" -max_total_time="$SECONDS_TO_RUN" -max_len=4096 -timeout=10 \
  -artifact_prefix="$BUILD/artifacts/" "$BUILD/corpus" firmware/host/fuzz/corpus
