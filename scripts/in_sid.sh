#!/usr/bin/env bash
# in_sid.sh COMMAND...: run COMMAND inside the Debian root that carries Python 3.14
# (the newest Home Assistant needs >= 3.14.2; Debian 12 has none). A private mount
# namespace bind-mounts /proc, /dev, /sys, /tmp, the checkout and pip's cache at the
# same paths, so the command sees the same files and the same loopback network as
# everything else, and the mounts vanish with its last process. Needs root.
set -euo pipefail
ROOT_DIR=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/sid_env.sh
source "$ROOT_DIR/scripts/sid_env.sh"
if [ ! -f "$SID_ROOT/.ready" ]; then
  echo "in_sid.sh: $SID_ROOT is not set up (make bootstrap creates it)" >&2
  exit 1
fi
PIP_CACHE=${PIP_CACHE_DIR:-${HOME:-/root}/.cache/pip}
mkdir -p "$PIP_CACHE"
exec unshare --mount --propagation private -- /bin/bash -c '
  set -e
  sid=$1 checkout=$2 pipcache=$3 cwd=$4; shift 4
  mount -t proc proc "$sid/proc"
  mount --rbind /dev "$sid/dev"
  mount --rbind /sys "$sid/sys"
  mount --bind /tmp "$sid/tmp"
  case "$checkout" in /tmp/*) ;; *) mkdir -p "$sid$checkout"; mount --bind "$checkout" "$sid$checkout" ;; esac
  mkdir -p "$sid/root/.cache/pip"; mount --bind "$pipcache" "$sid/root/.cache/pip"
  exec chroot "$sid" /bin/bash -c "cd \"\$0\" 2>/dev/null || cd /; exec \"\$@\"" "$cwd" "$@"
' in_sid "$SID_ROOT" "$ROOT_DIR" "$PIP_CACHE" "$PWD" "$@"
