"""Process plumbing shared by every part of the harness.

Every child process started here is registered so that it is killed when the
Python process exits, whatever the reason (normal exit, exception, Ctrl-C,
SIGTERM). Children started from the main thread also get the kernel's
parent-death signal, so they do not outlive a harness that is itself killed.
"""

from __future__ import annotations

import asyncio
import atexit
from collections.abc import Awaitable, Callable, Mapping, Sequence
import concurrent.futures
import contextlib
import ctypes
import ctypes.util
import json
import os
from pathlib import Path
import signal
import socket
import subprocess
import threading
import time
from types import TracebackType
from typing import IO, Any, ClassVar, Self, cast

_PR_SET_PDEATHSIG = 1
_LIVE: set[subprocess.Popen[bytes]] = set()
_LIVE_LOCK = threading.Lock()


class HarnessError(RuntimeError):
    """A process did not start or a condition was not met in time."""


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port on ``host`` that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_open(host: str, port: int) -> bool:
    """Whether a TCP connection to ``host:port`` is accepted."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_until(
    condition: Callable[[], bool],
    timeout: float,
    what: str,
    interval: float = 0.05,
    diagnostics: Callable[[], str] | None = None,
) -> None:
    """Poll ``condition`` until it is true; raise HarnessError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return
        if time.monotonic() >= deadline:
            extra = f"\n{diagnostics()}" if diagnostics is not None else ""
            raise HarnessError(f"timed out after {timeout:.0f} s waiting for {what}{extra}")
        time.sleep(interval)


async def async_wait_until(
    condition: Callable[[], Awaitable[bool]],
    within: float,
    what: str,
    interval: float = 0.1,
) -> None:
    """Async twin of :func:`wait_until` for conditions that need I/O (``within`` seconds)."""
    deadline = time.monotonic() + within
    last_error: BaseException | None = None
    while True:
        try:
            if await condition():
                return
        except (OSError, TimeoutError, ValueError, KeyError) as err:
            last_error = err
        if time.monotonic() >= deadline:
            cause = f" (last error: {last_error!r})" if last_error is not None else ""
            raise HarnessError(f"timed out after {within:.0f} s waiting for {what}{cause}")
        await asyncio.sleep(interval)


def run_sync[R](factory: Callable[[], Awaitable[R]]) -> R:
    """Run a coroutine to completion from synchronous code, even inside a running loop."""
    try:
        asyncio.get_running_loop()
        in_loop = True
    except RuntimeError:
        in_loop = False
    if not in_loop:
        return asyncio.run(_as_coro(factory))
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, _as_coro(factory)).result()


async def _as_coro[R](factory: Callable[[], Awaitable[R]]) -> R:
    return await factory()


def tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a log file (for error messages)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path.name})"
    return "\n".join(text.splitlines()[-lines:])


def read_private_json(path: Path) -> dict[str, Any]:
    """The object kept in ``path`` by :func:`write_private_json`; empty if absent or unreadable."""
    try:
        return cast(dict[str, Any], json.loads(path.read_text()))
    except (OSError, ValueError):
        return {}


def write_private_json(path: Path, data: Mapping[str, Any]) -> None:
    """Write ``data`` to ``path`` atomically, readable by the owner only (mode 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.chmod(0o600)
    tmp.replace(path)


def _set_pdeathsig() -> None:  # pragma: no cover - runs in the child
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return
    libc = ctypes.CDLL(libc_name, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def spawn(
    args: Sequence[str],
    log_path: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    stdout_pipe: bool = False,
) -> subprocess.Popen[bytes]:
    """Start a registered child process with its output in ``log_path``.

    With ``stdout_pipe`` the child's stdout is a pipe (the caller reads it and
    copies it to the log); stderr always goes to the log file.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log: IO[bytes] = log_path.open("ab")
    full_env = dict(os.environ)
    if env is not None:
        full_env.update(env)
    main_thread = threading.current_thread() is threading.main_thread()
    try:
        proc = subprocess.Popen(
            list(args),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if stdout_pipe else log,
            stderr=log,
            env=full_env,
            cwd=cwd,
            # Own session: a Ctrl-C in the terminal reaches only the harness, which then
            # stops its children in order.
            start_new_session=True,
            preexec_fn=_set_pdeathsig if main_thread else None,  # noqa: PLW1509
        )
    finally:
        log.close()
    with _LIVE_LOCK:
        _LIVE.add(proc)
    return proc


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> int:
    """SIGTERM, then SIGKILL after ``timeout`` seconds; returns the exit code."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait()
    forget(proc)
    return int(proc.returncode)


def kill_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL and reap."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    proc.wait()
    forget(proc)


def forget(proc: subprocess.Popen[bytes]) -> None:
    with _LIVE_LOCK:
        _LIVE.discard(proc)


def kill_all() -> None:
    """Kill every child this process started and that is still registered."""
    with _LIVE_LOCK:
        procs = list(_LIVE)
        _LIVE.clear()
    for proc in procs:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)


class ManagedProcess:
    """One child process owned by an object: ``start()`` brings it up, ``stop()`` (also on
    leaving a ``with`` block) sends SIGTERM, ``kill()`` SIGKILL; ``log()`` tails its log."""

    log_lines: ClassVar[int] = 60
    stop_timeout: ClassVar[float] = 15.0

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 30.0) -> Self:
        raise NotImplementedError

    def _check_alive(self, proc: subprocess.Popen[bytes], what: str) -> None:
        """While waiting for the child: raise, with its log's tail, if it has exited."""
        if proc.poll() is not None:
            raise HarnessError(f"{what} exited with {proc.returncode}:\n{tail(self.log_path)}")

    def _wait_listening(
        self, proc: subprocess.Popen[bytes], what: str, host: str, port: int, timeout: float
    ) -> None:
        """Wait until the child accepts TCP connections on ``host:port``."""

        def ready() -> bool:
            self._check_alive(proc, what)
            return port_open(host, port)

        wait_until(ready, timeout, f"{what} on port {port}")

    def _after_exit(self) -> None:
        """Called once the child is gone (stopped or killed)."""

    def stop(self, timeout: float | None = None) -> int:
        """SIGTERM (SIGKILL after ``timeout`` seconds); returns the exit code, 0 if not running."""
        code = 0
        if self._proc is not None:
            code = stop_process(self._proc, self.stop_timeout if timeout is None else timeout)
            self._proc = None
        self._after_exit()
        return code

    def kill(self) -> None:
        """SIGKILL: no clean shutdown."""
        if self._proc is not None:
            kill_process(self._proc)
            self._proc = None
        self._after_exit()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def log(self, lines: int | None = None) -> str:
        return tail(self.log_path, self.log_lines if lines is None else lines)


def _on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def install_signal_handlers() -> None:
    """SIGTERM -> SystemExit, SIGINT -> KeyboardInterrupt (even if inherited as ignored),
    so that finally blocks and atexit run and every child is stopped."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_sigterm)
        signal.signal(signal.SIGINT, signal.default_int_handler)


atexit.register(kill_all)
