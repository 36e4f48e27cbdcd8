"""The per-container shim: starts a container with runc and stays with it until it exits.

Forked by the runtime's launcher (.shimlauncher) and run as :func:`main` with the
arguments ``--id … --bundle … …`` (``python -I -S shim.py …`` does the same): stdlib
only, and only its cheap modules (no argparse, re, json or tempfile).
It outlives the kubelet: a kubelet restart finds
the container still running and its output still logged.  Like containerd's shim
or conmon, it::

    becomes a child subreaper            the container's init is re-parented to it,
                                         so it can collect the exit status
    runs  runc run --detach               container stdio = pipes (or a pty) it holds
    writes "ok <pid>\\n" to fd 1          the runtime's start() returns here
      (or "error <message>\\n")
    copies output to the CRI log          <RFC3339Nano> <stdout|stderr> <F|P> <text>
                                         rotated at --log-max-size into .1, .2, …
    serves attach clients                 an abstract unix socket, root peers only
    on exit writes exit.json              exitCode (128+signal when killed),
                                         finishedAt, oomKilled (the cgroup's oom_kill
                                         counter moved)
    then exits itself

Attach protocol: frames of ``type (1 byte) | length (4 bytes, big endian) | data``.
From the shim: 1 stdout, 2 stderr.  To the shim: 0 stdin data, 3 resize
(``rows, columns`` as two big-endian uint16), 4 close stdin.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import selectors
import signal
import socket
import struct
import sys
import termios
import time

PR_SET_CHILD_SUBREAPER = 36
LINE_LIMIT = 16 * 1024
DRAIN_SECONDS = 2.0
MAX_CLIENT_BACKLOG = 4 << 20
FRAME_STDIN, FRAME_STDOUT, FRAME_STDERR, FRAME_RESIZE, FRAME_CLOSE_STDIN = 0, 1, 2, 3, 4


def rfc3339nano(ns: int | None = None) -> str:
    ns = time.time_ns() if ns is None else ns
    seconds, fraction = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{fraction:09d}Z"


def write_json(path: str, doc: dict[str, object], *, durable: bool = True) -> None:
    """Atomically write a flat JSON object of ints, bools and strings (json imports re);
    ``durable``: on disk before the rename (an exit status must survive a machine crash;
    started.json need not: after a crash the container is gone anyway)."""
    def value(v: object) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int):
            return str(v)
        text = str(v).replace("\\", "\\\\").replace('"', '\\"')
        return '"' + "".join(c if " " <= c else f"\\u{ord(c):04x}" for c in text) + '"'
    body = "{" + ", ".join(f'"{k}": {value(v)}' for k, v in doc.items()) + "}"
    tmp = f"{path}.tmp"
    with open(tmp, "w") as out:
        out.write(body)
        if durable:
            out.flush()
            os.fsync(out.fileno())
    os.replace(tmp, path)


class CriLog:
    """Writes output in the CRI log format, splitting lines longer than LINE_LIMIT."""

    def __init__(self, path: str, max_size: int, max_files: int, strip_cr: bool) -> None:
        self.path, self.max_size, self.max_files, self.strip_cr = path, max_size, max_files, strip_cr
        self.pending = {"stdout": b"", "stderr": b""}
        self.out = open(path, "ab", buffering=0)

    def feed(self, stream: str, data: bytes) -> None:
        buffer = self.pending[stream] + data
        while True:
            newline = buffer.find(b"\n")
            if newline < 0:
                break
            line, buffer = buffer[:newline], buffer[newline + 1:]
            while len(line) > LINE_LIMIT:
                self.record(stream, "P", line[:LINE_LIMIT])
                line = line[LINE_LIMIT:]
            self.record(stream, "F", line)
        while len(buffer) >= LINE_LIMIT:
            self.record(stream, "P", buffer[:LINE_LIMIT])
            buffer = buffer[LINE_LIMIT:]
        self.pending[stream] = buffer

    def flush(self) -> None:
        for stream, rest in self.pending.items():
            if rest:
                self.record(stream, "F", rest)
            self.pending[stream] = b""

    def record(self, stream: str, tag: str, text: bytes) -> None:
        if self.strip_cr and text.endswith(b"\r"):
            text = text[:-1]
        line = f"{rfc3339nano()} {stream} {tag} ".encode() + text + b"\n"
        if self.max_size > 0 and self.out.tell() > 0 and self.out.tell() + len(line) > self.max_size:
            self.rotate()
        self.out.write(line)

    def rotate(self) -> None:
        self.out.close()
        for index in range(self.max_files - 1, 0, -1):
            older = f"{self.path}.{index - 1}" if index > 1 else self.path
            if os.path.exists(older):
                os.replace(older, f"{self.path}.{index}")
        if self.max_files <= 1:
            os.unlink(self.path)
        self.out = open(self.path, "ab", buffering=0)


def receive_pty(listener: socket.socket, runc_pid: int) -> tuple[int | None, int | None]:
    """Wait for runc to hand over the pty master; returns (master fd, runc status if it exited)."""
    listener.settimeout(0.05)
    while True:
        try:
            connection, _ = listener.accept()
        except socket.timeout:
            pid, status = os.waitpid(runc_pid, os.WNOHANG)
            if pid:
                return None, status
            continue
        with connection:
            _, fds, _, _ = socket.recv_fds(connection, 4096, 1)
        return (fds[0] if fds else None), None


def runc_error(log_path: str) -> str:
    import json   # only on this error path: it is slow to import
    message = ""
    try:
        with open(log_path) as log:
            for line in log:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if entry.get("level") in ("error", "fatal"):
                    message = entry.get("msg", "")
    except OSError:
        pass
    return message or "runc failed without a message"


class Shim:
    def __init__(self, args: "Args") -> None:
        self.args = args
        self.selector = selectors.DefaultSelector()
        self.clients: dict[socket.socket, bytes] = {}     # bytes received, not yet a frame
        self.outgoing: dict[socket.socket, bytes] = {}    # frames not yet sent
        self.stdin_w: int | None = None
        self.pty: int | None = None
        self.readers: dict[int, str] = {}
        self.stdin_pending = b""
        self.stdin_was_attached = False

    def start(self) -> int:
        """Run the container; return its pid (after telling the runtime)."""
        a = self.args
        self.attach_listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.attach_listener.bind("\0" + a.attach_socket)   # before "ok": attach works at once
        self.attach_listener.listen(8)
        devnull = os.open(os.devnull, os.O_RDWR)
        console_dir, listener = None, None
        child_fds = []
        if a.tty:
            console_dir = f"/tmp/skiff-console-{os.urandom(8).hex()}"
            os.mkdir(console_dir, 0o700)
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            listener.bind(os.path.join(console_dir, "c.sock"))
            listener.listen(1)
            stdio = (devnull, devnull, devnull)
        else:
            out_r, out_w = os.pipe()
            err_r, err_w = os.pipe()
            self.readers = {out_r: "stdout", err_r: "stderr"}
            if a.stdin:
                in_r, self.stdin_w = os.pipe()
                child_fds.append(in_r)
            else:
                in_r = devnull
            stdio = (in_r, out_w, err_w)
            child_fds += [out_w, err_w]
        command = [a.runc, "--root", a.runc_root, "--log", a.runc_log, "--log-format", "json",
                   "run", "--detach", "--pid-file", a.pid_file, "--bundle", a.bundle]
        if listener is not None:
            command += ["--console-socket", listener.getsockname()]
        command.append(a.id)
        actions = [(os.POSIX_SPAWN_DUP2, fd, target) for target, fd in enumerate(stdio)]
        # the container must not inherit Python's ignored SIGPIPE (ignored signals survive exec)
        runc = os.posix_spawn(a.runc, command, os.environ, file_actions=actions,
                              setsigdef=(signal.SIGPIPE, signal.SIGXFSZ), setsigmask=())
        for fd in child_fds:
            os.close(fd)
        status = None
        if listener is not None:
            self.pty, status = receive_pty(listener, runc)
            listener.close()
        if status is None:
            _, status = os.waitpid(runc, 0)
        if console_dir:
            for name in os.listdir(console_dir):
                os.unlink(os.path.join(console_dir, name))
            os.rmdir(console_dir)
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(runc_error(a.runc_log))
        with open(a.pid_file) as pid_file:
            pid = int(pid_file.read().strip())
        if self.pty is not None:
            self.readers = {self.pty: "stdout"}
            if a.stdin:
                self.stdin_w = self.pty
        started: dict[str, object] = {"pid": pid}
        try:    # the container's init is our child now (we are its subreaper): this is it
            started["startTime"] = process_start_time(str(pid))
        except OSError:
            pass
        started.update(shimPid=os.getpid(), shimStartTime=process_start_time(), startedAt=rfc3339nano())
        write_json(os.path.join(a.state_dir, "started.json"), started, durable=False)
        return pid

    def serve(self, pid: int) -> dict[str, object]:
        """Log output and serve attach clients until the container has exited."""
        a = self.args
        log = CriLog(a.log_path, a.log_max_size, a.log_max_files, strip_cr=a.tty)
        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.set_wakeup_fd(wake_w)
        listener = self.attach_listener
        listener.setblocking(False)
        self.selector.register(wake_r, selectors.EVENT_READ, "wake")
        self.selector.register(listener, selectors.EVENT_READ, "listen")
        for fd in self.readers:
            os.set_blocking(fd, False)
            self.selector.register(fd, selectors.EVENT_READ, "output")
        exit_status: int | None = None
        deadline = None
        while self.readers or exit_status is None:
            if exit_status is None:
                exit_status = self.reap(pid)
                if exit_status is not None:
                    deadline = time.monotonic() + DRAIN_SECONDS
            if exit_status is not None and (not self.readers or time.monotonic() > (deadline or 0)):
                break
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            for key, events in self.selector.select(timeout):
                if key.data == "wake":
                    drain(wake_r)
                elif key.data == "listen":
                    self.accept(listener)
                elif key.data == "output":
                    self.read_output(key.fd, log)
                elif key.data == "client":
                    client: socket.socket = key.fileobj  # type: ignore[assignment]
                    if events & selectors.EVENT_WRITE and client in self.outgoing:
                        self.send(client)
                    if events & selectors.EVENT_READ and client in self.clients:
                        self.read_client(client)
                elif key.data == "stdin":
                    self.flush_stdin()
        log.flush()
        for client in list(self.clients):
            client.setblocking(True)
            client.settimeout(1.0)
            try:
                client.sendall(self.outgoing[client])   # the last output, briefly
            except OSError:
                pass
            client.close()
        listener.close()
        assert exit_status is not None
        code = os.waitstatus_to_exitcode(exit_status)
        code = 128 - code if code < 0 else code
        oom_kills = read_oom_kills(a.oom_file) if a.oom_file else 0
        return {"exitCode": code, "finishedAt": rfc3339nano(), "oomKilled": oom_kills > 0}

    def reap(self, pid: int) -> int | None:
        result = None
        while True:
            try:
                child, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return result
            if child == 0:
                return result
            if child == pid:
                result = status

    def read_output(self, fd: int, log: CriLog) -> None:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError as err:
            if err.errno != errno.EIO:   # EIO: the pty's other side is gone
                raise
            data = b""
        if not data:
            self.selector.unregister(fd)
            del self.readers[fd]
            if fd != self.stdin_w:
                os.close(fd)
            return
        stream = self.readers[fd]
        log.feed(stream, data)
        frame = struct.pack(">BI", FRAME_STDOUT if stream == "stdout" else FRAME_STDERR, len(data)) + data
        for client in list(self.clients):
            self.outgoing[client] += frame
            if len(self.outgoing[client]) > MAX_CLIENT_BACKLOG:
                self.drop(client)     # a client that does not read must not stall the container
            else:
                self.send(client)

    def send(self, client: socket.socket) -> None:
        """Send what a client's socket takes now; wait for writability for the rest."""
        try:
            sent = client.send(self.outgoing[client]) if self.outgoing[client] else 0
        except BlockingIOError:
            sent = 0
        except OSError:
            self.drop(client)
            return
        self.outgoing[client] = self.outgoing[client][sent:]
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if self.outgoing[client] else 0)
        self.selector.modify(client, events, "client")

    def accept(self, listener: socket.socket) -> None:
        try:
            client, _ = listener.accept()
        except BlockingIOError:
            return
        credentials = client.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        _, uid, _ = struct.unpack("3i", credentials)
        if uid != os.geteuid():
            client.close()
            return
        client.setblocking(False)
        self.clients[client] = b""
        self.outgoing[client] = b""
        self.selector.register(client, selectors.EVENT_READ, "client")

    def drop(self, client: socket.socket) -> None:
        self.clients.pop(client, None)
        self.outgoing.pop(client, None)
        try:
            self.selector.unregister(client)
        except (KeyError, ValueError):
            pass
        client.close()
        if self.args.stdin_once and self.stdin_was_attached and not self.clients:
            self.close_stdin()

    def read_client(self, client: socket.socket) -> None:
        try:
            data = client.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.drop(client)
            return
        buffer = self.clients[client] + data
        while len(buffer) >= 5:
            kind, length = struct.unpack(">BI", buffer[:5])
            if len(buffer) < 5 + length:
                break
            payload, buffer = buffer[5:5 + length], buffer[5 + length:]
            if kind == FRAME_STDIN and self.stdin_w is not None:
                self.stdin_was_attached = True
                self.stdin_pending += payload
                self.flush_stdin()
            elif kind == FRAME_CLOSE_STDIN:
                self.stdin_was_attached = True
                self.close_stdin()
            elif kind == FRAME_RESIZE and self.pty is not None and length == 4:
                rows, columns = struct.unpack(">HH", payload)
                fcntl.ioctl(self.pty, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        self.clients[client] = buffer

    def flush_stdin(self) -> None:
        if self.stdin_w is None:
            return
        try:
            written = os.write(self.stdin_w, self.stdin_pending) if self.stdin_pending else 0
        except BlockingIOError:
            written = 0
        except OSError:
            self.stdin_pending = b""
            written = 0
        self.stdin_pending = self.stdin_pending[written:]
        registered = self.stdin_w in self.selector.get_map() and self.stdin_w not in self.readers
        if self.stdin_pending and not registered and self.stdin_w not in self.readers:
            os.set_blocking(self.stdin_w, False)
            self.selector.register(self.stdin_w, selectors.EVENT_WRITE, "stdin")
        elif not self.stdin_pending and registered:
            self.selector.unregister(self.stdin_w)

    def close_stdin(self) -> None:
        if self.stdin_w is None:
            return
        if self.pty is not None:
            self.stdin_pending += b"\x04"   # a terminal's end of file
            self.flush_stdin()
            return
        if self.stdin_w in self.selector.get_map():
            self.selector.unregister(self.stdin_w)
        os.close(self.stdin_w)
        self.stdin_w = None


def process_start_time(pid: str = "self") -> int:
    """A process's start time (clock ticks after boot): with the pid, unique for the
    boot, so a reused pid is never taken for this shim."""
    with open(f"/proc/{pid}/stat", "rb") as stat:
        return int(stat.read().rsplit(b")", 1)[1].split()[19])


def read_oom_kills(path: str) -> int:
    try:
        with open(path) as counters:
            for line in counters:
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
    except (OSError, ValueError):
        pass
    return 0


class Args:
    """The command line: ``--name value`` options and ``--flag`` switches."""

    FLAGS = ("tty", "stdin", "stdin_once")
    REQUIRED = ("id", "bundle", "runc", "runc_root", "state_dir", "log_path", "attach_socket")

    def __init__(self, argv: list[str]) -> None:
        self.log_max_size = 10 << 20
        self.log_max_files = 5
        self.oom_file = ""
        self.tty = self.stdin = self.stdin_once = False
        values: dict[str, str] = {}
        items = iter(argv)
        for item in items:
            if not item.startswith("--"):
                raise SystemExit(f"skiff-shim: unexpected argument {item!r}")
            name = item[2:].replace("-", "_")
            if name in self.FLAGS:
                setattr(self, name, True)
            else:
                values[name] = next(items)
        missing = [n for n in self.REQUIRED if n not in values]
        if missing:
            raise SystemExit(f"skiff-shim: missing {', '.join(missing)}")
        self.id, self.bundle, self.runc = values["id"], values["bundle"], values["runc"]
        self.runc_root, self.state_dir = values["runc_root"], values["state_dir"]
        self.log_path, self.attach_socket = values["log_path"], values["attach_socket"]
        self.log_max_size = int(values.get("log_max_size", self.log_max_size))
        self.log_max_files = int(values.get("log_max_files", self.log_max_files))
        self.oom_file = values.get("oom_file", "")
        self.runc_log = os.path.join(self.state_dir, "runc.log")
        self.pid_file = os.path.join(self.state_dir, "pid")


def drain(fd: int) -> None:
    """Read a non-blocking (wake-up) pipe empty."""
    while True:
        try:
            if not os.read(fd, 512):
                return
        except BlockingIOError:
            return


def run(shim: Shim, state_dir: str) -> int:
    """A shim's life once it is a subreaper: start the container, tell the runtime
    ("ok <pid>" or "error <message>", one line on fd 1, then fd 0 and 1 let go),
    serve it until it exits, record exit.json."""
    try:
        pid = shim.start()
    except Exception as err:  # reported to the runtime, which raises StartFailed
        os.write(1, f"error {err}\n".replace("\n", " ").encode() + b"\n")
        return 1
    os.write(1, f"ok {pid}\n".encode())
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    result = shim.serve(pid)
    write_json(os.path.join(state_dir, "exit.json"), result)
    return 0


def main(argv: list[str]) -> int:
    args = Args(argv)
    ctypes.CDLL(None).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    return run(Shim(args), args.state_dir)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
