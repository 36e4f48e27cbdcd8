"""Containers without root: what an unprivileged user can do to give a process a
container's view of the machine.

Used by the process runtime's shim (.processshim) and run as a script for ``exec``
and for the capability check, so it is stdlib only (no skiff imports).

Two isolation modes, chosen once per node by :func:`check`::

    userns   unprivileged user namespaces work (this kernel, no sysctl against them):
             each container is started as
               unshare(user, mount, pid, uts, ipc)   the caller becomes "root" of new
               uid_map "<uid> <our uid> 1"           namespaces it owns; one uid/gid
               gid_map "<gid> <our gid> 1"           mapped (no newuidmap: no ranges)
               fork ─▶ pid 1 of the new pid namespace:
                 overlay of the image layers         userxattr (unprivileged overlayfs)
                 /proc (fresh), /dev (tmpfs + host   nodes bound from the host), /sys
                 null, zero, …, devpts, shm),        (read-only bind)
                 volumes and /etc/hosts,
                 resolv.conf, hostname bound at
                 their container paths
                 sethostname, pivot_root, chdir      then exec the command
             so paths, volumes, ``ps`` and signals behave as in a runc container;
             the network stays the host's (no veth without root).

    plain    no namespaces at all: the command runs as a host process, in a session
             of its own, from the image's unpacked layers where it can be found
             (see :func:`plain_command`), with the container's directory as cwd.

``exec`` (:func:`exec_main`) joins a running container: setns into its namespaces
(user first, which grants the rights for the others), chroot to its root, chdir
to its working directory, fork (the pid namespace applies to children), exec.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl          # these three load C extensions: imported before any setns, as the
import json
import os
import platform
import select         # container's root has no Python to load them from
import signal
import stat
import sys
import termios
import tty
from collections import deque

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
NAMESPACE_FLAGS = {"mnt": CLONE_NEWNS, "uts": CLONE_NEWUTS, "ipc": CLONE_NEWIPC,
                   "user": CLONE_NEWUSER, "pid": CLONE_NEWPID}

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
MNT_DETACH = 2
PR_SET_NO_NEW_PRIVS = 38
TIOCSCTTY = 0x540E
#: statvfs flag bits -> the mount flags a bind remount must keep (locked in a user namespace)
_KEPT_FLAGS = ((os.ST_NOSUID, MS_NOSUID), (os.ST_NODEV, MS_NODEV), (os.ST_NOEXEC, MS_NOEXEC),
               (os.ST_NOATIME, MS_NOATIME), (os.ST_NODIRATIME, MS_NODIRATIME),
               (os.ST_RELATIME, MS_RELATIME))
_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
MAX_SYMLINKS = 40
EXIT_NOT_FOUND, EXIT_CANNOT_RUN = 127, 126

_libc = ctypes.CDLL(None, use_errno=True)


class SetupError(Exception):
    """The container could not be set up; the message is shown as its start error."""


def _check(result: int, what: str) -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise SetupError(f"{what}: {os.strerror(code)}")


# -- primitives ------------------------------------------------------------------------------


def mount(source: str | None, target: str, fstype: str | None, flags: int = 0,
          data: str = "") -> None:
    _check(_libc.mount(source.encode() if source else None, os.fsencode(target),
                       fstype.encode() if fstype else None, ctypes.c_ulong(flags),
                       data.encode() if data else None),
           f"mount {fstype or 'bind'} {source or ''} on {target}")


def bind(source: str, target: str, *, read_only: bool = False, recursive: bool = True) -> None:
    """Bind ``source`` at ``target``; read-only by a remount that keeps the locked flags."""
    mount(source, target, None, MS_BIND | (MS_REC if recursive else 0))
    if read_only:
        current = os.statvfs(target).f_flag
        kept = 0
        for bit, flag in _KEPT_FLAGS:
            if current & bit:
                kept |= flag
        mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | kept)


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), "unshare")


def write_id_maps(uid: int, gid: int, host_uid: int, host_gid: int) -> None:
    """Map one uid and one gid of the new user namespace onto ours (what an
    unprivileged process may write for itself; setgroups must be denied first)."""
    try:
        with open("/proc/self/setgroups", "w") as out:
            out.write("deny")
    except FileNotFoundError:
        pass
    for name, inside, outside in (("uid_map", uid, host_uid), ("gid_map", gid, host_gid)):
        try:
            with open(f"/proc/self/{name}", "w") as out:
                out.write(f"{inside} {outside} 1\n")
        except OSError as err:
            raise SetupError(f"writing {name}: {err.strerror}") from None


def pivot_root(root: str) -> None:
    """Make ``root`` the root of this mount namespace; the old root goes away."""
    os.chdir(root)
    number = _PIVOT_ROOT.get(platform.machine())
    if number is not None and _libc.syscall(number, b".", b".") == 0:
        _check(_libc.umount2(b".", MNT_DETACH), "unmount the old root")
    else:   # an architecture we have no syscall number for: chroot is the fallback
        os.chroot(".")
    os.chdir("/")


def resolve_in_root(root: str, path: str) -> str:
    """``path`` as seen inside ``root`` (symlinks resolved against it, never out of it)."""
    pending = deque(p for p in path.split("/") if p)
    resolved: list[str] = []
    links = 0
    while pending:
        part = pending.popleft()
        if part == ".":
            continue
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(root, *resolved, part)
        try:
            st = os.lstat(candidate)
        except (FileNotFoundError, NotADirectoryError):
            resolved.append(part)
            continue
        if stat.S_ISLNK(st.st_mode):
            links += 1
            if links > MAX_SYMLINKS:
                raise SetupError(f"too many symlinks resolving {path!r}")
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            pending.extendleft(reversed([p for p in target.split("/") if p]))
        else:
            resolved.append(part)
    return os.path.join(root, *resolved)


def _mount_point(source: str, target: str) -> None:
    """Create ``target`` as a directory or an empty file, like ``source``."""
    if os.path.isdir(source):
        os.makedirs(target, exist_ok=True)
        return
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if not os.path.lexists(target):
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o644))


def process_start_time(pid: int | str) -> int | None:
    """Clock ticks after boot at which ``pid`` started (None: no such process)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as source:
            return int(source.read().rsplit(b")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


# -- a container's root (userns mode; runs as pid 1 of the new namespaces) --------------------


def prepare_root(spec: dict) -> None:  # type: ignore[type-arg]
    """Mount the container's filesystem and pivot into it (see the module docstring)."""
    rootfs = spec["rootfs"]
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    layers = spec["layers"] or [spec["empty"]]
    mount("overlay", rootfs, "overlay", 0,
          f"lowerdir={':'.join(layers)},upperdir={spec['upper']},workdir={spec['work']},userxattr")
    proc = resolve_in_root(rootfs, "/proc")
    os.makedirs(proc, exist_ok=True)
    try:
        if "pid" not in spec["namespaces"]:
            raise SetupError("the host's pid namespace")
        mount("proc", proc, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    except SetupError:   # hostPID, or a /proc with masked parts (a container host)
        bind("/proc", proc)
    _prepare_dev(resolve_in_root(rootfs, "/dev"))
    sys_dir = resolve_in_root(rootfs, "/sys")
    os.makedirs(sys_dir, exist_ok=True)
    try:
        bind("/sys", sys_dir, read_only=True)
    except (SetupError, OSError):
        pass            # containers rarely need /sys; a host that refuses it is not fatal
    for item in spec["mounts"]:
        target = resolve_in_root(rootfs, item["target"])
        try:
            _mount_point(item["source"], target)
        except OSError as err:
            raise SetupError(f"mount point {item['target']}: {err.strerror}") from None
        bind(item["source"], target, read_only=bool(item.get("readOnly")))
    cwd = resolve_in_root(rootfs, spec["cwd"] or "/")
    os.makedirs(cwd, exist_ok=True)
    if "uts" in spec["namespaces"] and spec.get("hostname"):
        name = spec["hostname"].encode()
        _check(_libc.sethostname(name, len(name)), "sethostname")
    pivot_root(rootfs)
    if spec.get("readOnlyRoot"):
        bind("/", "/", read_only=True, recursive=False)
    os.chdir(spec["cwd"] or "/")


def _prepare_dev(dev: str) -> None:
    os.makedirs(dev, exist_ok=True)
    mount("tmpfs", dev, "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k")
    for name in DEVICES:
        if os.path.exists(f"/dev/{name}"):
            _mount_point(f"/dev/{name}", os.path.join(dev, name))
            bind(f"/dev/{name}", os.path.join(dev, name), recursive=False)
    os.mkdir(os.path.join(dev, "pts"))
    try:
        mount("devpts", os.path.join(dev, "pts"), "devpts", MS_NOSUID | MS_NOEXEC,
              "newinstance,ptmxmode=0666,mode=0620")
        os.symlink("pts/ptmx", os.path.join(dev, "ptmx"))
    except SetupError:
        pass            # no private terminals; the container's own tty (if any) still works
    os.mkdir(os.path.join(dev, "shm"))
    mount("shm", os.path.join(dev, "shm"), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
          "mode=1777,size=65536k")
    os.mkdir(os.path.join(dev, "mqueue"))
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2"),
                         ("core", "/proc/kcore")):
        os.symlink(target, os.path.join(dev, name))


# -- the process --------------------------------------------------------------------------------


def plain_command(argv: list[str], path: str, layers: list[str]) -> tuple[str | None, str]:
    """The executable for ``argv`` of a container without its own root, and the PATH
    it runs with: each directory of the container's PATH inside the image layers
    (top-most first), then the same directories on the host.  ``argv[0]`` is looked
    up the same way (an absolute path: the image's file of that name, else the host's);
    None when nothing matches (exec then fails with "not found")."""
    entries = [e for e in path.split(":") if e.startswith("/")]
    search = [layer + entry for entry in entries for layer in layers
              if os.path.isdir(layer + entry)] + entries
    new_path = ":".join(dict.fromkeys(search))
    program = argv[0] if argv else ""
    if program.startswith("/"):
        for layer in layers:
            if os.path.lexists(layer + program):
                return layer + program, new_path
        return program, new_path
    if "/" in program:
        return program, new_path
    for directory in search:
        candidate = os.path.join(directory, program)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate, new_path
    return None, new_path


def run_command(executable: str | None, argv: list[str], env: dict[str, str]) -> None:
    """Exec (never returns); ``executable`` None searches the environment's PATH (by
    hand: after pivot_root the interpreter's lazily imported modules are out of reach)."""
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
    program = executable or (argv[0] if argv else "")
    if executable is not None or "/" in program:
        os.execve(program, argv, env)
    denied: OSError | None = None
    for directory in (env.get("PATH") or "/usr/local/bin:/usr/bin:/bin").split(":"):
        candidate = os.path.join(directory or ".", program)
        try:
            os.execve(candidate, argv, env)
        except (FileNotFoundError, NotADirectoryError):
            if os.path.isfile(candidate) and denied is None:   # there, but its ELF interpreter is not
                denied = OSError(errno.ENOENT, f'exec: "{candidate}": no such file or directory')
        except PermissionError as err:
            denied = err
    raise denied or FileNotFoundError(
        errno.ENOENT, f'exec: "{program}": executable file not found in $PATH')


def exec_error(argv: list[str], err: OSError) -> tuple[int, str]:
    """Exit code and message for a command that could not be executed."""
    if isinstance(err, FileNotFoundError):
        text = err.strerror if err.strerror and err.strerror.startswith("exec:") else \
            f'exec: "{argv[0] if argv else ""}": executable file not found in $PATH'
        return EXIT_NOT_FOUND, text
    return EXIT_CANNOT_RUN, f'exec: "{argv[0] if argv else ""}": {err.strerror or err}'


def exit_code(status: int) -> int:
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


# -- exec into a running container ------------------------------------------------------------


def enter(pid: int, namespaces: list[str]) -> None:
    """Join the container whose pid 1 is ``pid`` (user namespace first) and its root."""
    fds = {kind: os.open(f"/proc/{pid}/ns/{kind}", os.O_RDONLY | os.O_CLOEXEC)
           for kind in ["user", "mnt", *namespaces]}
    root = os.open(f"/proc/{pid}/root", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for kind, fd in fds.items():
            _check(_libc.setns(fd, NAMESPACE_FLAGS[kind]), f"setns {kind}")
        os.fchdir(root)
        os.chroot(".")
    finally:
        for fd in [*fds.values(), root]:
            os.close(fd)


def exec_main(args: list[str]) -> int:
    """``exec <container dir> [--tty] -- argv…``: run argv in the container; its exit code."""
    directory, tty = args[0], "--tty" in args[1:args.index("--")]
    argv = args[args.index("--") + 1:]
    with open(os.path.join(directory, "process.json")) as source:
        spec = json.load(source)
    with open(os.path.join(directory, "started.json")) as source:
        started = json.load(source)
    if tty:
        os.setsid()
        _libc.ioctl(0, TIOCSCTTY, 0)
    env = dict(spec["env"])
    executable = None
    try:
        if spec["mode"] == "userns":
            pid = int(started["pid"])
            if process_start_time(pid) != started.get("pidStartTime"):
                raise SetupError("the container is not running")
            enter(pid, [n for n in spec["namespaces"] if n != "user"])
            os.chdir(spec["cwd"] or "/")
        else:
            os.chdir(spec["cwd"])
            executable, env["PATH"] = plain_command(argv, spec["path"], spec["layers"])
    except SetupError as err:
        print(f"skiff exec: {err}", file=sys.stderr)
        return EXIT_CANNOT_RUN
    except OSError as err:
        code, message = exec_error(argv, err)
        print(message, file=sys.stderr)
        return code
    inner = container_terminal() if tty and spec["mode"] == "userns" else None
    child = os.fork()    # joining a pid namespace applies to children only
    if child == 0:
        try:
            if inner is not None:
                os.close(inner[0])
                os.setsid()
                _libc.ioctl(inner[1], TIOCSCTTY, 0)
                for fd in (0, 1, 2):
                    os.dup2(inner[1], fd)
                os.close(inner[1])
            run_command(executable, argv, env)
        except OSError as err:
            code, message = exec_error(argv, err)
            os.write(2, message.encode() + b"\n")
            os._exit(code)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if inner is not None:
        os.close(inner[1])
        relay_terminal(inner[0])
    return exit_code(os.waitpid(child, 0)[1])


def container_terminal() -> tuple[int, int] | None:
    """A terminal from the container's own devpts (its /dev/ptmx, after entering its mount
    namespace), so that ``tty`` names it and ``/dev/pts/N`` exists inside; None without one.

    The kubelet's terminal (this process's stdio) belongs to the host's devpts, which the
    container cannot see; this process relays between the two (:func:`relay_terminal`)."""
    try:
        return os.openpty()
    except OSError:
        return None


def relay_terminal(master: int) -> None:
    """Copy bytes between the kubelet's terminal (fd 0 / 1) and the container's ``master``
    until the container side closes; window sizes follow the kubelet's (SIGWINCH)."""
    def copy_size(*_: object) -> None:
        try:
            size = fcntl.ioctl(0, termios.TIOCGWINSZ, b"\0" * 8)
            fcntl.ioctl(master, termios.TIOCSWINSZ, size)
        except OSError:
            pass

    tty.setraw(0, termios.TCSANOW)   # (not TCSAFLUSH: keep what was typed already); the
                                     # container's terminal does the echo and line editing
    copy_size()
    signal.signal(signal.SIGWINCH, copy_size)
    open_input = True
    while True:
        try:
            ready, _, _ = select.select([master, 0] if open_input else [master], [], [])
        except InterruptedError:
            continue
        if master in ready:
            try:
                data = os.read(master, 65536)
            except OSError:    # EIO: every process of the container's side has closed it
                data = b""
            if not data:
                return
            os.write(1, data)
        if open_input and 0 in ready:
            try:
                data = os.read(0, 65536)
            except OSError:
                data = b""
            if data:
                os.write(master, data)
            else:
                open_input = False


def close_inherited_descriptors() -> None:
    """Close every descriptor above stdio that this process was started with.

    The runtime starts the shim and this helper through asyncio's subprocess support,
    whose ``close_fds`` uvloop (the loop ``skiff up`` runs on) does not implement: the
    child keeps the loop's spare copies of its stdio (among them the write end of the
    pipe the runtime reads the shim's verdict from) and whatever else the loop left
    inheritable.  Kept, they would pass on to the container and hold that pipe open
    for as long as it runs; so both scripts drop them before doing anything."""
    os.closerange(3, os.sysconf("SC_OPEN_MAX"))


# -- can this machine do it? ---------------------------------------------------------------------


def check(scratch: str) -> str:
    """``userns`` when a child can do everything a container start needs, else
    ``plain: <why not>`` (run in a throwaway process: it changes its namespaces)."""
    for sub in ("lower", "upper", "work", "root"):
        os.makedirs(os.path.join(scratch, sub), exist_ok=True)
    report_r, report_w = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(report_r)
        message = b"userns"
        try:
            uid, gid = os.geteuid(), os.getegid()     # before unshare: then they are unmapped
            unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC)
            write_id_maps(0, 0, uid, gid)
            inner = os.fork()
            if inner == 0:
                try:
                    mount(None, "/", None, MS_REC | MS_PRIVATE)
                    root = os.path.join(scratch, "root")
                    mount("overlay", root, "overlay", 0,
                          f"lowerdir={scratch}/lower,upperdir={scratch}/upper,"
                          f"workdir={scratch}/work,userxattr")
                    os.makedirs(os.path.join(root, "proc"))
                    mount("proc", os.path.join(root, "proc"), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
                    os._exit(0)
                except BaseException as err:  # noqa: B036 - reported through the exit
                    os.write(report_w, f"plain: {err}".encode())
                    os._exit(1)
            os.waitpid(inner, 0)
        except BaseException as err:  # noqa: B036
            message = f"plain: {err}".encode()
        os.write(report_w, message)
        os._exit(0)
    os.close(report_w)
    os.waitpid(child, 0)
    with os.fdopen(report_r, "rb") as report:
        text = report.read().decode(errors="replace")
    # the inner failure (if any) was written first
    return "userns" if text == "userns" else text.removesuffix("userns")


def main(argv: list[str]) -> int:
    close_inherited_descriptors()
    if argv[:1] == ["check"]:
        print(check(argv[1]))
        return 0
    if argv[:1] == ["exec"]:
        return exec_main(argv[1:])
    print("usage: rootless.py check DIR | exec CONTAINER_DIR [--tty] -- ARGV...", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
