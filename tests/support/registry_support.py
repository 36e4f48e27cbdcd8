"""A real registry on loopback for pull tests: Debian's docker-registry (distribution).

It listens on all interfaces unless told otherwise, so the config binds it to
127.0.0.1 explicitly.  Images are pushed with ``skopeo copy``.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path


@dataclass
class LocalRegistry:
    host: str                      # "127.0.0.1:<port>"
    process: subprocess.Popen[bytes]
    drain: threading.Thread
    creds: tuple[str, str] | None = None

    def push(self, source: str, name: str, *, all_platforms: bool = False) -> None:
        """skopeo copy ``source`` (e.g. docker-archive:/x.tar) to ``<host>/<name>``."""
        command = ["skopeo", "--insecure-policy", "copy", "--dest-tls-verify=false"]
        if all_platforms:
            command.append("--all")
        if self.creds:
            command.append(f"--dest-creds={self.creds[0]}:{self.creds[1]}")
        subprocess.run([*command, source, f"docker://{self.host}/{name}"], check=True,
                       capture_output=True)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.drain.join(timeout=5)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_registry(directory: Path, creds: tuple[str, str] | None = None) -> LocalRegistry:
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    auth = ""
    if creds is not None:
        line = subprocess.run(["htpasswd", "-Bbn", creds[0], creds[1]], check=True,
                              capture_output=True, text=True).stdout.strip()
        (directory / "htpasswd").write_text(line + "\n")
        auth = f"auth:\n  htpasswd:\n    realm: skiff-test\n    path: {directory / 'htpasswd'}\n"
    config = directory / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: info\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {directory / 'data'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n" + auth)
    process = subprocess.Popen([shutil.which("docker-registry") or "docker-registry", "serve",
                                str(config)], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert process.stderr is not None
    seen = []
    for raw in process.stderr:          # its log says when it listens
        seen.append(raw.decode(errors="replace"))
        if f"listening on 127.0.0.1:{port}" in seen[-1]:
            break
    else:
        process.wait()
        raise RuntimeError("docker-registry did not start:\n" + "".join(seen))
    stderr = process.stderr
    drain = threading.Thread(target=lambda: [None for _ in stderr], daemon=True)
    drain.start()
    return LocalRegistry(host=f"127.0.0.1:{port}", process=process, drain=drain, creds=creds)
