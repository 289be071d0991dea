"""A real Mosquitto broker on loopback, with optional password auth and TLS."""

from __future__ import annotations

from dataclasses import dataclass
import os
from pathlib import Path
import shutil
import subprocess
from typing import Self

from harness._process import (
    HarnessError,
    ManagedProcess,
    free_port,
    port_open,
    spawn,
    wait_until,
)

HOST = "127.0.0.1"


@dataclass(frozen=True)
class TlsFiles:
    """A private CA and a server certificate for 127.0.0.1/localhost signed by it."""

    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path


def _openssl(*args: str, cwd: Path) -> None:
    result = subprocess.run(
        ["openssl", *args], cwd=cwd, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise HarnessError(f"openssl {args[0]} failed: {result.stderr.strip()}")


def make_tls_files(directory: Path) -> TlsFiles:
    """Generate (once) a CA and a server certificate in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(
        ca_cert=directory / "ca.crt",
        ca_key=directory / "ca.key",
        server_cert=directory / "server.crt",
        server_key=directory / "server.key",
    )
    if all(p.exists() for p in (files.ca_cert, files.ca_key, files.server_cert, files.server_key)):
        return files
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650",
        "-subj", "/CN=esp-mcp-bridge test CA",
        "-keyout", files.ca_key.name, "-out", files.ca_cert.name,
        cwd=directory,
    )  # fmt: skip
    ext = directory / "server.ext"
    ext.write_text(
        "basicConstraints=CA:FALSE\n"
        "keyUsage=digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
    )
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
        "-keyout", files.server_key.name, "-out", "server.csr",
        cwd=directory,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", "server.csr", "-CA", files.ca_cert.name,
        "-CAkey", files.ca_key.name, "-CAcreateserial", "-days", "3650",
        "-extfile", ext.name, "-out", files.server_cert.name,
        cwd=directory,
    )  # fmt: skip
    for key in (files.ca_key, files.server_key):
        key.chmod(0o600)
    return files


class Broker(ManagedProcess):
    """Mosquitto bound to 127.0.0.1 on a free port that stays the same across restarts.

    ``username``/``password`` switch on password authentication (anonymous
    access off); ``tls`` makes the listener MQTT over TLS with a generated CA
    (``ca_file``).
    """

    def __init__(
        self,
        state_dir: Path,
        *,
        username: str | None = None,
        password: str | None = None,
        tls: bool = False,
        port: int | None = None,
        nodelay: bool = True,
        log_name: str = "mosquitto",
    ) -> None:
        if (username is None) != (password is None):
            raise ValueError("give both username and password, or neither")
        self.state_dir = Path(state_dir)
        self.username = username
        self.password = password
        self.tls = tls
        self.port = port if port is not None else free_port(HOST)
        self.nodelay = nodelay
        self.host = HOST
        super().__init__(self.state_dir / "logs" / f"{log_name}.log")
        self.conf_path = self.state_dir / f"{log_name}.conf"
        self.tls_files: TlsFiles | None = None
        self._name = log_name

    # ------------------------------------------------------------------ config
    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"

    @property
    def ca_file(self) -> Path | None:
        return self.tls_files.ca_cert if self.tls_files is not None else None

    def _write_config(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        lines = [
            f"listener {self.port} {self.host}",
            # Like a packaged broker: retained messages survive a restart.
            "persistence true",
            f"persistence_location {self.state_dir}/",
            f"persistence_file {self._name}.db",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
            "log_timestamp_format %Y-%m-%dT%H:%M:%S",
            # Mosquitto's default (1,000 messages queued per client, the rest dropped) loses
            # retained capabilities when hundreds of devices start at once and Home
            # Assistant falls behind; docs/home-assistant.md advises the same for users.
            "max_queued_messages 100000",
        ]
        if self.nodelay:
            lines.append("set_tcp_nodelay true")
        if os.geteuid() == 0:
            # As root Mosquitto drops to user `mosquitto`, which cannot read files here.
            lines.insert(0, "user root")
        if self.username is not None and self.password is not None:
            passwd = self.state_dir / f"{self._name}.passwd"
            passwd.unlink(missing_ok=True)
            result = subprocess.run(
                ["mosquitto_passwd", "-b", "-c", str(passwd), self.username, self.password],
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode != 0:
                raise HarnessError(f"mosquitto_passwd failed: {result.stderr.strip()}")
            passwd.chmod(0o600)
            lines += ["allow_anonymous false", f"password_file {passwd}"]
        else:
            lines.append("allow_anonymous true")
        if self.tls:
            self.tls_files = make_tls_files(self.state_dir / "tls")
            lines += [
                f"cafile {self.tls_files.ca_cert}",
                f"certfile {self.tls_files.server_cert}",
                f"keyfile {self.tls_files.server_key}",
                "tls_version tlsv1.2",
            ]
        self.conf_path.write_text("\n".join(lines) + "\n")

    # --------------------------------------------------------------- lifecycle
    def start(self, timeout: float = 15.0) -> Self:
        if self.running:
            return self
        if shutil.which("mosquitto") is None and not Path("/usr/sbin/mosquitto").exists():
            raise HarnessError("mosquitto is not installed (make bootstrap installs it)")
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self._write_config()
        proc = spawn([binary, "-c", str(self.conf_path)], self.log_path)
        self._proc = proc
        self._wait_listening(proc, "mosquitto", self.host, self.port, timeout)
        return self

    def stop(self, timeout: float | None = None) -> int:
        code = super().stop(timeout)
        # The port must be free again before a restart binds it.
        wait_until(lambda: not port_open(self.host, self.port), 10.0, "mosquitto to close")
        return code

    def restart(self) -> None:
        self.stop()
        self.start()
