# Where the Debian root with Python 3.14 lives: outside the checkout, so a new clone
# on the same machine reuses it (it holds no project files, only Debian's packages).
SID_ROOT=${SID_ROOT:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/esp-mcp-bridge/debian-py314}
