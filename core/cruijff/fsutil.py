"""Writing files so that a crash at any moment leaves either the old or the new version, and
reading them back with an error that names the file when one was damaged anyway."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cruijff.errors import UserError


class UnreadableFile(UserError):
    """A JSON file cruijff wrote can no longer be read: cut short by a full disk or a crash
    outside cruijff's control, or edited by hand. The message names the file and the line."""


def write_atomic(
    path: Path, text: str | bytes, *, executable: bool = False, durable: bool = True
) -> None:
    """Write ``text`` (UTF-8) or bytes (a PNG) to ``path`` through a temporary file in the
    same folder and a rename: a killed process leaves the old file or the new one.

    ``durable`` also flushes it to the disk before the rename, so that a power cut cannot leave
    an empty file where the old one was: for what cruijff alone knows (job records). Files made
    again from the experiment file (a scaffold's, thousands at a time) skip that flush, three
    quarters of their writing time.
    """
    try:
        fd, tmp = _temporary(path)
    except OSError as error:
        error.filename = str(path)  # not the temporary name, which says nothing
        raise
    try:
        data = text.encode("utf-8") if isinstance(text, str) else text
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
            os.fchmod(handle.fileno(), 0o755 if executable else 0o644)
        os.replace(tmp, path)
    except BaseException as error:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(error, OSError):
            error.filename = str(path)  # not the temporary file's name: it is gone
        raise


def _temporary(path: Path) -> tuple[int, str]:
    """A new file beside ``path`` (mode 600 until it is complete), open for writing; its folder
    is made only when missing (a scaffold writes thousands of files into existing ones)."""
    for _ in range(100):
        tmp = os.path.join(path.parent, f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600), tmp
        except FileExistsError:
            continue
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
    raise FileExistsError(f"no free temporary name beside {path}")


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON, atomically."""
    write_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def read_json(path: Path | str, *, fix: str = "") -> Any | None:
    """The JSON in ``path``, or None if the file does not exist.

    Raises UnreadableFile, saying ``fix`` (what the user can do about it), when the file is
    not valid JSON; an OSError (unreadable, permission) is left to the caller.
    """
    try:
        with open(path, "rb") as handle:
            text = handle.read()
    except FileNotFoundError:
        return None
    try:
        return json.loads(text.decode("utf-8"))
    except UnicodeDecodeError as error:
        where = f"byte {error.start}"
    except json.JSONDecodeError as error:
        where = f"line {error.lineno}"
    empty = " (it is empty)" if not text.strip() else ""
    raise UnreadableFile(
        f"{path} is not valid JSON ({where}){empty}" + (f": {fix}" if fix else ""),
        hint="it was cut short (a full disk, a crash) or edited by hand",
    )


def try_lock(path: Path) -> int | None:
    """An fd holding an exclusive flock on ``path`` (created if missing), or None if taken.

    flock belongs to the open file description, so the lock lives on in every process that
    inherits the fd, and ends when the last of them closes it or dies.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold the exclusive flock on ``path`` (created if missing) for the block, waiting for
    it while another process holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
