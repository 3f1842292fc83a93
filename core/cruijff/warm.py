"""Warm processes: a job's Python work run in a fork of a process that has already imported
what it needs, so that a job which spends seconds importing torch, transformers and inspect
(an evaluation cell) spends them once per experiment instead of once per job.

Only where the scheduler offers it: the local scheduler sets ``CRUIJFF_WARM`` to its folder in
every job's environment; a SLURM job, whose node runs nothing else of the experiment, never
sees it and runs its work itself. A job asks :func:`call`; None means "run it yourself".

The pieces, all on this machine and this user's:

- a **server**, ``python -m cruijff.warm NAME TARGET MODULE...``, started by the first job that
  finds none, detached, its output in ``$CRUIJFF_WARM/warm/NAME.log``. It listens on the
  abstract Unix socket ``NAME`` (no file; it vanishes with the server), answers only its own
  user (the peer's credentials are checked), imports the MODULEs, and exits once nothing ran
  for ``IDLE_S``. NAME is a digest of the Python, the target, the modules, the code of the
  target's package and the job environment bar the variables jobs may differ in
  (:data:`PER_JOB`): modules read some of the environment when imported, so a job with
  another environment gets another server.
- a **worker** per job: the server forks after the job's request arrives (the server never
  runs a thread, so forking is safe), and the worker takes the job's standard streams and its
  other open descriptors (the local scheduler's job lock among them, passed over the socket),
  its directory, environment and arguments, runs ``TARGET(argv)`` and exits with its code.
- the **client**, the job's own process, which waits: it forwards SIGTERM and SIGINT to the
  worker, and the worker stops itself when the client's end of the socket closes (a client
  killed outright), so a cancelled job stops its work. The server sends the worker's exit code
  and peak resident memory when it reaps it; the client writes that peak into its local job
  folder (``usage.json``), which the job wrapper reports in place of its own small one.

A server that cannot start, cannot import its modules, or would fork with a thread running
makes :func:`call` return None before any work began: the job runs as it always did.

**Early start.** A job whose tool marks it (:data:`WARMS` in its environment: its command asks
:func:`call` before it does anything else) may have its server started before it can run: the
local executor runs its command early with :data:`PREPARE`, and :func:`call` then only starts
the server (or finds it), tells it a job is coming and returns 0. Such a server imports while
the jobs before it run (an evaluation's training), and waits for that job while the executor
lives (at most :data:`MAX_WAIT_S`) instead of for ``IDLE_S``; the executor says so again while
the job waits.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import importlib
import importlib.util
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

ENV = "CRUIJFF_WARM"
"""Set by the local scheduler to its folder: jobs may use warm processes (logs under it)."""
WORKER = "CRUIJFF_WARM_WORKER"
"""Set in a worker's environment: its work runs there, never through another server."""
IDLE = "CRUIJFF_WARM_IDLE_S"
"""How long a server waits for work before it exits (seconds; default :data:`IDLE_S`)."""
IDLE_S = 20.0
WARMS = "CRUIJFF_WARMS"
"""In a job's own environment (set by its tool): its command calls :func:`call` before it does
anything else, so that running it with :data:`PREPARE` set does nothing but prepare."""
PREPARE = "CRUIJFF_WARM_PREPARE"
"""Set by the local executor (to its pid) where it runs a job's command early: :func:`call`
starts the job's server and returns 0; the job's work does not run."""
MAX_WAIT_S = 3600.0
"""The longest a server waits for a job it was told is coming."""
PER_JOB = frozenset(
    {"CRUIJFF_LOCAL_JOB", "CUDA_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES", PREPARE}
    | {"PWD", "OLDPWD", "SHLVL", "_"}  # a shell's
)
"""Variables that differ between the jobs one server serves: read by the work, late (CUDA
initialises in the worker, never in the server), not by the imports."""
USAGE = "usage.json"
"""Written by the client into its local job folder: the worker's peak resident memory."""
START_S = 30.0
"""How long a client waits for a server it started to listen."""
GRACE_S = 5.0
"""How long a worker whose client vanished has to stop before it is killed."""

_HEADER = struct.Struct("!I")


def call(
    target: str, argv: Sequence[str], modules: Sequence[str], imports: Sequence[str] = ()
) -> int | None:
    """Run ``target`` (``"package.module:function"``, called with ``argv``) in a worker of a
    warm server that imported ``modules``, importing ``imports`` (per-job hints: a model
    type's code) in the server first; the exit code, or None where no worker ran (no
    ``CRUIJFF_WARM``, already in a worker, no server could be had): the caller then runs it."""
    scope = os.environ.get(ENV)
    if os.environ.get(PREPARE):  # run early by the local executor: the server, no work
        if scope and not os.environ.get(WORKER):
            name = server_name(target, modules)
            found = _connect(name) or _start(name, Path(scope), target, modules)
            if found is not None:
                with found, contextlib.suppress(OSError):
                    # a job is coming: wait for it while this executor lives, importing its
                    # model's code meanwhile
                    early = {"imports": list(imports), "wait_for": os.environ[PREPARE]}
                    _send(found, early)
        return 0
    if not scope or os.environ.get(WORKER):
        return None
    name = server_name(target, modules)
    conn = _connect(name) or _start(name, Path(scope), target, modules)
    if conn is None:
        return None
    with conn:
        request = {
            "argv": list(argv),
            "cwd": os.getcwd(),
            "env": dict(os.environ),
            "imports": list(imports),
        }
        fds = _open_descriptors(exclude=conn.fileno())
        if fds[:3] != [0, 1, 2]:  # a job without its standard streams: left to itself
            return None
        try:
            _send(conn, request, fds)
            accepted = _receive(conn)
        except OSError:
            accepted = None
        if accepted is None:  # the server ended before it forked: nothing ran
            return None

        def forward(signum: int, frame: Any) -> None:
            with contextlib.suppress(OSError):
                conn.send(b"T")

        signal.signal(signal.SIGTERM, forward)
        signal.signal(signal.SIGINT, forward)
        try:
            ended = _receive(conn)
        except OSError:
            ended = None
    if ended is None:
        print(f"cruijff: the warm process {name} ended before its worker did", file=sys.stderr)
        return 1
    folder = os.environ.get("CRUIJFF_LOCAL_JOB")
    if folder and ended.get("peak_rss_mb"):
        from cruijff.fsutil import write_json

        with contextlib.suppress(OSError):
            write_json(Path(folder) / USAGE, {"peak_rss_mb": ended["peak_rss_mb"]})
    return int(ended["code"])


def server_name(target: str, modules: Sequence[str]) -> str:
    """The abstract socket name of the server for this target, these modules, this code and
    this environment (:data:`PER_JOB` aside)."""
    env = sorted((k, v) for k, v in os.environ.items() if k not in PER_JOB)
    parts = [sys.executable, target, list(modules), env, _code_stamp(target)]
    digest = hashlib.sha256(json.dumps(parts).encode()).hexdigest()
    return f"cruijff-warm-{os.getuid()}-{digest[:24]}"


def _code_stamp(target: str) -> list:
    """The sizes and times of the target package's files: a server started before they were
    edited is not used after."""
    spec = importlib.util.find_spec(target.partition(":")[0].partition(".")[0])
    stamps: list = []
    for folder in (spec.submodule_search_locations or []) if spec else []:
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            if entry.name.endswith(".py"):
                info = entry.stat()
                stamps.append([entry.name, info.st_size, info.st_mtime_ns])
    return stamps


def _connect(name: str) -> socket.socket | None:
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect("\0" + name)
    except OSError:
        conn.close()
        return None
    return conn


def _start(name: str, scope: Path, target: str, modules: Sequence[str]) -> socket.socket | None:
    """Start a server (or find the one another job just started) and connect to it."""
    log_dir = scope / "warm"
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
        log = open(log_dir / f"{name}.log", "ab")  # noqa: SIM115 -- the server's from here on
    except OSError:
        return None
    with log:
        try:
            server = subprocess.Popen(
                [sys.executable, "-m", "cruijff.warm", name, target, *modules],
                cwd=log_dir,
                env={k: v for k, v in os.environ.items() if k not in PER_JOB},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a cancelled job's group signal does not reach it
            )
        except OSError:
            return None
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline:
        conn = _connect(name)
        if conn is not None:
            return conn
        if server.poll() is not None and server.returncode != 0:
            return None  # it could not listen; one that found another listening exits 0
        time.sleep(0.02)
    return None


def _open_descriptors(exclude: int) -> list[int]:
    """The client's open descriptors, 0, 1 and 2 first: the worker holds them all."""
    opened = sorted(int(fd) for fd in os.listdir("/proc/self/fd"))
    usable = []
    for fd in opened:
        if fd == exclude:
            continue
        try:
            os.fstat(fd)  # the listing's own descriptor is gone by now
        except OSError:
            continue
        usable.append(fd)
    return usable


def _send(conn: socket.socket, message: dict, fds: Sequence[int] = ()) -> None:
    data = json.dumps(message).encode()
    framed = _HEADER.pack(len(data)) + data
    sent = socket.send_fds(conn, [framed], list(fds)) if fds else conn.send(framed)
    conn.sendall(framed[sent:])


def _receive(conn: socket.socket, fds: list[int] | None = None) -> dict | None:
    """One framed message (None at the end of the stream); descriptors sent with it are
    appended to ``fds``."""
    data = b""
    while len(data) < _HEADER.size or len(data) < _HEADER.size + _HEADER.unpack_from(data)[0]:
        if fds is not None and not data:
            chunk, received, _, _ = socket.recv_fds(conn, 1 << 16, 64)
            fds.extend(received)
        else:
            chunk = conn.recv(1 << 16)
        if not chunk:
            return None
        data += chunk
    return json.loads(data[_HEADER.size :])


# --- the server ------------------------------------------------------------------------------


def serve(name: str, target: str, modules: Sequence[str]) -> int:
    """Listen on ``name``, import ``modules`` and fork a worker per request until idle."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind("\0" + name)
    except OSError:  # another job started it first
        return 0
    listener.listen(64)  # before the imports: jobs that come meanwhile wait in the backlog
    say(f"serving {target} (pid {os.getpid()}); importing {', '.join(modules)}")
    began = time.monotonic()
    try:
        for module in modules:
            importlib.import_module(module)
    except BaseException:
        traceback.print_exc()
        say("cannot import what the jobs need: they run their work themselves")
        return 1
    if threading.active_count() > 1:
        say(f"threads started while importing {threading.enumerate()}: forking is not safe")
        return 1
    say(f"ready in {time.monotonic() - began:.1f} s")
    idle_s = float(os.environ.get(IDLE, IDLE_S))
    # while a job is coming (an early start said so): the executor's pid, and since when
    expected: tuple[int | None, float] = (None, 0.0)
    workers: dict[int, socket.socket] = {}
    last, listening = time.monotonic(), True

    def waiting() -> bool:  # for a job that is coming, while the executor that said so lives
        pid, since = expected
        return pid is not None and time.monotonic() - since < MAX_WAIT_S and _alive(pid)

    listener.settimeout(0.2)
    while workers or (listening and (time.monotonic() - last < idle_s or waiting())):
        _reap(workers)
        if workers:
            last = time.monotonic()
        if not listening:
            time.sleep(0.2)
            continue
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            continue
        conn.settimeout(None)
        pid = _fork_worker(listener, conn, target, workers)
        if isinstance(pid, Coming):
            expected = (pid.executor, time.monotonic())
            conn.close()
        elif pid is None:
            conn.close()
        elif pid < 0:  # forking is no longer safe: the running workers finish, no new ones
            conn.close()
            listener.close()
            listening = False
        else:
            workers[pid] = conn
            expected = (None, 0.0)  # it came: wait as long as idle servers do
        last = time.monotonic()
    say("idle: exiting")
    return 0


def _pid(text: str | None) -> int | None:
    try:
        return int(text) if text else None
    except ValueError:
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: alive
    return True


class Coming(NamedTuple):
    """An early start's request: a job of the executor ``executor`` (a pid) is coming."""

    executor: int | None


def _fork_worker(
    listener: socket.socket, conn: socket.socket, target: str, workers: dict
) -> int | Coming | None:
    """Fork a worker for the request on ``conn``: its pid, None for a request refused, -1
    where a thread now runs in the server (a fork could copy a held lock); for an early
    start's request (no descriptors), what it imports is imported and it says who waits."""
    uid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[1]
    if uid != os.getuid():
        say(f"refused a request from user {uid}")
        return None
    fds: list[int] = []
    try:
        request = _receive(conn, fds)
    except (OSError, ValueError):
        request = None
    if request is None or len(fds) < 3:
        for fd in fds:
            os.close(fd)
        if request is not None and "wait_for" in request:  # a job's early start
            _import(request.get("imports", []))
            return Coming(_pid(str(request["wait_for"])))
        return None
    _import(request.get("imports", []))
    if threading.active_count() > 1:  # an import started one: no more forks from here
        say(f"threads started while importing {threading.enumerate()}: no more workers")
        for fd in fds:
            os.close(fd)
        return -1
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        listener.close()
        for other in workers.values():
            other.close()
        _work(conn, fds, request, target)  # never returns
    for fd in fds:
        os.close(fd)
    with contextlib.suppress(OSError):
        _send(conn, {"pid": pid})
    say(f"worker {pid}: {' '.join(request['argv'])} in {request['cwd']}")
    return pid


def _import(modules: Sequence[str]) -> None:
    """Import a job's hints (a model type's code) ahead of it; one that fails costs its
    seconds in the worker, it stops nothing."""
    for module in modules:
        try:
            importlib.import_module(module)
        except Exception as error:
            say(f"cannot import {module} ahead of a job: {error}")


def _reap(workers: dict[int, socket.socket]) -> None:
    while workers:
        try:
            pid, status, usage = os.wait4(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        code = os.waitstatus_to_exitcode(status)
        conn = workers.pop(pid, None)
        if conn is not None:
            with contextlib.suppress(OSError), conn:
                shell = code if code >= 0 else 128 - code
                _send(conn, {"code": shell, "peak_rss_mb": round(usage.ru_maxrss / 1024, 1)})


def _work(conn: socket.socket, fds: list[int], request: dict, target: str) -> None:
    """The worker: become the job (its streams, descriptors, directory, environment and
    arguments), run the target, exit with its code."""
    code = 1
    try:
        for number, fd in enumerate(fds[:3]):
            os.dup2(fd, number)
            os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        os.environ[WORKER] = "1"
        sys.argv = [target, *request["argv"]]
        sys.path[0] = request["cwd"]
        for number in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
            signal.signal(number, signal.SIG_DFL)
        threading.Thread(target=_watch, args=(conn,), daemon=True).start()
        module, _, function = target.partition(":")
        result = getattr(importlib.import_module(module), function)(request["argv"])
        code = result if isinstance(result, int) else 0 if result is None else 1
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 0 if stop.code is None else 1
    except BaseException:
        traceback.print_exc()
    finally:
        with contextlib.suppress(OSError):
            atexit._run_exitfuncs()
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)  # not the server's teardown (and not a second of the job's wall time)


def _watch(conn: socket.socket) -> None:
    """Stop the worker when its client asks (a forwarded signal) or is gone."""
    with contextlib.suppress(OSError):
        conn.recv(1)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(GRACE_S)
    os._exit(128 + signal.SIGKILL)


def say(message: str) -> None:
    print(f"[cruijff-warm {time.strftime('%H:%M:%S')}] {message}", flush=True)


if __name__ == "__main__":
    sys.exit(serve(sys.argv[1], sys.argv[2], sys.argv[3:]))
