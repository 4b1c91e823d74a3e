"""Which landing files are new: content hashes, one partition key per distinct content.

Event tables are ingested file by file. Each file becomes one partition whose key names the file
and its content (`clickstream_2026-03.parquet@3fa9c2d1e0b4`), so a partition's content never
changes and processing it once is enough:

- a new file, or a file whose content changed, gets a new key and is processed;
- the same content dropped again (same name or another) maps to the key it already has: nothing
  runs and no event is counted twice;
- a key whose file left the landing folder (or changed) is retired, so the landing folder stays the
  single truth of what the tables hold, as the input contract says.

Hashing reads every byte, so hashes are cached by (size, modification time) between scans.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from features.ingest.read import landing_files

KEY_SEPARATOR = "@"
DIGEST_CHARS = 12  # 48 bits: a collision between two files of one table is not a practical worry
_CHUNK = 1 << 20


@dataclass(frozen=True)
class LandedFile:
    relpath: str  # relative to landing/<table>/, with "/" separators
    digest: str  # sha256 of the bytes, hex

    @property
    def key(self) -> str:
        return partition_key(self.relpath, self.digest)


@dataclass(frozen=True)
class PartitionChanges:
    """What to change so the partitions match the landing folder: keys to add (and process), keys
    to retire."""

    add: tuple[str, ...]
    retire: tuple[str, ...]
    keep: tuple[str, ...]

    @property
    def current(self) -> tuple[str, ...]:
        return tuple(sorted((*self.keep, *self.add)))


def partition_key(relpath: str, digest: str) -> str:
    return f"{relpath}{KEY_SEPARATOR}{digest[:DIGEST_CHARS]}"


def split_key(key: str) -> tuple[str, str]:
    """(relative path, short digest) of a partition key."""
    relpath, sep, digest = key.rpartition(KEY_SEPARATOR)
    if not sep or len(digest) != DIGEST_CHARS:
        raise ValueError(
            f"{key!r} is not a landing partition key "
            f"(expected '<file>{KEY_SEPARATOR}<{DIGEST_CHARS} hex digits>')"
        )
    return relpath, digest


def file_digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            sha.update(chunk)
    return sha.hexdigest()


def scan(
    landing: Path, table: str, cache: Mapping[str, Sequence] | None = None
) -> tuple[list[LandedFile], dict[str, list]]:
    """Every landing file of a table with its content hash, in file name order.

    `cache` maps a relative path to [size, mtime_ns, digest] from an earlier scan; a file whose size
    and modification time are unchanged is not read again. Returns the files and the new cache."""
    cache = cache or {}
    folder = landing / table
    files, fresh = [], {}
    for path in landing_files(landing, table):
        relpath = path.relative_to(folder).as_posix()
        stat = path.stat()
        cached = cache.get(relpath)
        if cached is not None and cached[0] == stat.st_size and cached[1] == stat.st_mtime_ns:
            digest = cached[2]
        else:
            digest = file_digest(path)
        fresh[relpath] = [stat.st_size, stat.st_mtime_ns, digest]
        files.append(LandedFile(relpath, digest))
    return files, fresh


def partition_changes(files: Sequence[LandedFile], existing: Sequence[str]) -> PartitionChanges:
    """Match partitions to files: one key per distinct content, an existing key kept where its file
    still holds that content, otherwise the first file (by name) holding it."""
    present = {f.relpath: f.digest[:DIGEST_CHARS] for f in files}
    keep = sorted(k for k in existing if present.get(split_key(k)[0]) == split_key(k)[1])
    covered = {split_key(k)[1] for k in keep}
    add = []
    for f in sorted(files, key=lambda f: f.relpath):
        short = f.digest[:DIGEST_CHARS]
        if short not in covered:
            add.append(f.key)
            covered.add(short)
    retire = sorted(set(existing) - set(keep))
    return PartitionChanges(tuple(add), tuple(retire), tuple(keep))


def resolve(landing: Path, table: str, key: str) -> Path:
    """The file behind a partition key, checked to still hold the content the key names."""
    relpath, digest = split_key(key)
    path = landing / table / relpath
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} (partition {key!r}) is no longer in the landing folder; "
            "the landing sensor retires its partition on its next tick"
        )
    actual = file_digest(path)[:DIGEST_CHARS]
    if actual != digest:
        raise ValueError(
            f"{path} changed since it was registered as partition {key!r} (content now {actual}); "
            "the landing sensor registers the new content as a new partition"
        )
    return path
