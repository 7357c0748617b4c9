"""A throwaway OpenSSH server on 127.0.0.1 for the remote-children tests.

`TestSSHD.start` makes a temporary directory with a host key, a user key, an
``authorized_keys`` file and an ``sshd_config`` that allows nothing but
public-key logins on 127.0.0.1 at a free port, and starts ``sshd -D -e`` on
it. `TestSSHD.options` is what a client passes as ``ssh_options=``: the
throwaway key, a known-hosts file holding only the throwaway host key, strict
host key checking and batch mode, so nothing is read from or written to
``~/.ssh``. Where no ``sshd`` exists and this process is root,
``openssh-server`` is installed with apt first.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import attrs

SSHD = "/usr/sbin/sshd"


class Unavailable(Exception):
    """No sshd can be started here; the message says why, in one line."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ensure_installed() -> None:
    if os.path.exists(SSHD):
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise Unavailable("no sshd, and no root with apt-get to install openssh-server")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update"],
        ["apt-get", "install", "-y", "openssh-server"],
    ):
        done = subprocess.run(command, env=env, capture_output=True, check=False)
        if done.returncode != 0:
            raise Unavailable(f"{' '.join(command)} failed: {done.stderr[-200:]!r}")
    if not os.path.exists(SSHD):
        raise Unavailable("openssh-server installed no /usr/sbin/sshd")


def _keygen(path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
        check=True,
        capture_output=True,
    )


@attrs.define(eq=False)
class TestSSHD:
    """A running test sshd and the files its clients need."""

    __test__ = False  # not a test class, despite its name

    directory: Path
    port: int
    process: subprocess.Popen[bytes]
    key: Path
    known_hosts: Path

    @classmethod
    def start(cls) -> TestSSHD:
        """Install (where needed and possible), configure and start an sshd.

        Raises:
          Unavailable: it cannot run here.
        """
        _ensure_installed()
        if os.geteuid() != 0:
            raise Unavailable("sshd needs root to log users in")
        # sshd refuses to start without its privilege separation directory.
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        directory = Path(tempfile.mkdtemp(prefix="trioproc-sshd-"))
        try:
            return cls._start_in(directory)
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise

    @classmethod
    def _start_in(cls, directory: Path) -> TestSSHD:
        host_key, key = directory / "host_key", directory / "user_key"
        _keygen(host_key)
        _keygen(key)
        (directory / "authorized_keys").write_bytes(
            (directory / "user_key.pub").read_bytes()
        )
        port = _free_port()
        config = directory / "sshd_config"
        config.write_text(
            f"ListenAddress 127.0.0.1:{port}\n"
            f"HostKey {host_key}\n"
            f"PidFile {directory / 'sshd.pid'}\n"
            f"AuthorizedKeysFile {directory / 'authorized_keys'}\n"
            "StrictModes no\n"
            "PubkeyAuthentication yes\n"
            "PasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\n"
            "PermitRootLogin prohibit-password\n"
            "UsePAM no\n"
            "AllowAgentForwarding no\n"
            "AllowTcpForwarding no\n"
            "X11Forwarding no\n"
            "PrintMotd no\n"
            "MaxSessions 50\n"
            "MaxStartups 50:30:100\n"
            "LogLevel ERROR\n"
        )
        host_public = (directory / "host_key.pub").read_text().split()
        known_hosts = directory / "known_hosts"
        known_hosts.write_text(
            f"[127.0.0.1]:{port} {host_public[0]} {host_public[1]}\n"
        )
        log = open(directory / "sshd.log", "wb")  # noqa: SIM115 - the child's
        with log:
            process = subprocess.Popen(
                [SSHD, "-D", "-e", "-f", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        self = cls(directory, port, process, key, known_hosts)
        deadline = time.monotonic() + 10
        while True:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", port), timeout=1),
            ):
                return self
            if process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise Unavailable(
                    "sshd did not start: "
                    + (directory / "sshd.log").read_text().strip()[-300:]
                )
            time.sleep(0.02)  # a bounded poll for the listening port

    def options(
        self, *, key: Path | None = None, known_hosts: Path | None = None
    ) -> list[str]:
        """``ssh_options=`` for a client of this server (another *key* or
        *known_hosts* file to test the failures)."""
        return [
            f"Port={self.port}",
            f"IdentityFile={key or self.key}",
            "IdentitiesOnly=yes",
            "IdentityAgent=none",
            f"UserKnownHostsFile={known_hosts or self.known_hosts}",
            "GlobalKnownHostsFile=/dev/null",
            "StrictHostKeyChecking=yes",
            "BatchMode=yes",
            "LogLevel=ERROR",
        ]

    def other_key(self, name: str) -> Path:
        """A fresh key pair, not authorized here (the private key's path)."""
        path = self.directory / name
        if not path.exists():
            _keygen(path)
        return path

    def stop(self) -> None:
        """Stop the server (its sessions end with it) and remove its files."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:  # pragma: no cover - stuck
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)
