"""What ``cruijff status`` reads of every job record, kept beside the records so that a status
of twenty thousand jobs reads again only the records that changed since the last one.

``<state_dir>/briefs.json``, written atomically by the status that found it out of date::

    {"format": 3, "read_from_ns": T,
     "records": {"<record file name>": [inode, mtime_ns, size, {...}], ...}}

Each entry holds the fields of :data:`FIELDS` (and of its job, :data:`JOB_FIELDS`) as the record
file had them, less what :func:`brief` leaves out. A cache, never the truth: an entry counts
only while its record file still has that inode, modification time and size (a record is
replaced by a rename, so each version has an inode of its own), and only for a record last
changed at least :data:`MARGIN_NS` before the status that read it began (``read_from_ns``):
on a filesystem whose times are coarse (Lustre's are to the second) and which reuses inodes,
a record saved again within the same tick could otherwise have the stamp of the version the
cache holds. Otherwise, and for a cache that cannot be read, the record file is read again. A
status that cannot write the cache (a read-only folder, a full disk) goes on without.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from cruijff.fsutil import write_atomic

NAME = "briefs.json"
FORMAT = 3
MARGIN_NS = 2 * 10**9
"""How long before a status began a record must have last changed for its entry to count."""
FIELDS = (
    "unit_id",
    "attempt",
    "state",
    "handle",
    "submitting",
    "exit_code",
    "cause",
    "metrics",
    "summary",
    "outdated",
    "updated",
)
"""The fields of a job record that status shows (the rest is its job's command and needs)."""
JOB_FIELDS = ("unit_id", "name", "workdir", "log")

Stamp = tuple[int, int, int]
"""A record file's inode, modification time (ns) and size."""


def stamp(entry: os.DirEntry[str]) -> Stamp:
    found = entry.stat()
    return (found.st_ino, found.st_mtime_ns, found.st_size)


DEFAULTS: dict[str, Any] = {
    "attempt": 0,
    "state": None,
    "handle": None,
    "submitting": False,
    "exit_code": None,
    "cause": "",
    "metrics": {},
    "summary": [],
    "outdated": False,
    "updated": "",
}
"""What a record's field is where its entry leaves it out (most of a finished job's are)."""


def brief(data: dict[str, Any]) -> dict[str, Any]:
    """The part of a record's plain data that status reads, without what can be told without
    it: fields at their default (:data:`DEFAULTS`), the job's unit where it is the record's,
    its folder where it is its log's, the handle's name where it is the job's (twenty thousand
    entries are read in one status)."""
    job = data["job"]
    kept = {key: data[key] for key in FIELDS if key in data and not _default(key, data[key])}
    small = {key: job[key] for key in JOB_FIELDS if key in job}
    # a unit or folder the record lacks is kept as null: left out, it would be told again
    for key in ("unit_id", "workdir"):
        small.setdefault(key, None)
    if small["unit_id"] == data.get("unit_id") and small["unit_id"] is not None:
        del small["unit_id"]
    log = small.get("log")
    if isinstance(log, str) and small["workdir"] == os.path.dirname(log):
        del small["workdir"]
    handle = kept.get("handle")
    if isinstance(handle, dict):
        if "name" not in handle:
            kept["handle"] = {**handle, "name": ""}  # JobHandle's default, not the job's name
        elif "name" in small and handle["name"] == small["name"]:
            kept["handle"] = {key: value for key, value in handle.items() if key != "name"}
    return {**kept, "job": small}


def _default(key: str, value: Any) -> bool:
    default = DEFAULTS.get(key, _NONE)
    return type(value) is type(default) and value == default  # 0 is not left out for False


_NONE = object()


def load(state_dir: Path) -> dict[str, tuple[Stamp, dict[str, Any]]]:
    """The cached entries that may count, by record file name: those of records that had not
    changed for :data:`MARGIN_NS` when they were read (none when the cache is missing or
    unreadable)."""
    try:
        with open(state_dir / NAME, "rb") as handle:
            data = json.loads(handle.read())
        if data.get("format") != FORMAT:
            return {}
        settled = int(data["read_from_ns"]) - MARGIN_NS
        return {
            name: ((int(ino), int(mtime), int(size)), fields)
            for name, (ino, mtime, size, fields) in data["records"].items()
            if isinstance(fields, dict) and int(mtime) < settled
        }
    except (OSError, ValueError, TypeError, KeyError, AttributeError, OverflowError):
        return {}


def save(
    state_dir: Path, entries: dict[str, tuple[Stamp, dict[str, Any]]], read_from_ns: int
) -> None:
    """Keep ``entries``, read by a status that began at ``read_from_ns`` (``time.time_ns``),
    for the next status, if the folder can be written."""
    records = {name: [*found, fields] for name, (found, fields) in entries.items()}
    cache = {"format": FORMAT, "read_from_ns": read_from_ns, "records": records}
    text = json.dumps(cache, separators=(",", ":"))
    with contextlib.suppress(OSError):  # a cache: the next status reads the records again
        write_atomic(state_dir / NAME, text, durable=False)
