"""The host example's program, run against a broker."""

from __future__ import annotations

import os
from pathlib import Path
import signal
import subprocess
from typing import IO


class DeviceProcess:
    def __init__(
        self,
        program: Path,
        broker_url: str,
        state_dir: Path,
        log_name: str,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = state_dir / f"{log_name}.log"
        self._log: IO[bytes] = self.log_path.open("ab")
        env = {
            **os.environ,
            "MCP_BRIDGE_BROKER_URI": broker_url,
            # ESPHome's host preferences (the bridge keeps its discovery mode there)
            "ESPHOME_PREFDIR": str(state_dir / "prefs"),
            **(extra_env or {}),
        }
        self.proc = subprocess.Popen(
            [str(program)], env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait(timeout)
        self._log.close()
        return rc
