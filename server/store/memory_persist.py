"""Durable keys of the embedded store: a snapshot file plus an append-only journal.

Only keys starting with one of ``durable_prefixes`` persist (default :data:`DURABLE_PREFIXES`:
quota and usage counters, and the ``pw:`` API-key / usage-plan registry); token buckets and
everything else stay in memory. A durable key holding a token bucket is recorded as deleted.

Files, both mode 0600 (the registry holds hashed API keys), both JSON (orjson):

* ``STATE``, the snapshot: one document ``{"portway_state": 1, "saved_at": EPOCH, "keys":
  [RECORD, ...]}``. Written to ``STATE.tmp``, fsynced and renamed over ``STATE``, so it is
  always whole.
* ``STATE.journal``: one ``RECORD`` per line, one line per mutation of a durable key, appended
  with a plain ``os.write`` on an ``O_APPEND`` descriptor before the mutating call returns; a
  call that changes several keys (``admit`` with a quota and a usage counter) writes them in one
  ``os.write``. The descriptor is ``flock``-ed while a store uses the files: a second store (or
  process) on the same path gets a StoreError.

A record holds a key's *resulting* state, so replaying is idempotent::

    {"k": KEY, "x": EXPIRY, "s": "text"}             string (valid UTF-8)
    {"k": KEY, "x": EXPIRY, "b": "base64"}           string (any other bytes)
    {"k": KEY, "x": EXPIRY, "h": {FIELD: "base64"}}  hash
    {"k": KEY, "x": EXPIRY, "m": [MEMBER, ...]}      set
    {"k": KEY, "d": 1}                               deleted

``EXPIRY`` is wall-clock epoch seconds (float), or null for no TTL: the store's TTL clock is
monotonic, so expiries are converted with the offset between ``time.time()`` and that clock
when written and when read. Keys already expired when loaded are dropped.

:meth:`StateFile.load` (the store's ``start``) reads the snapshot, replays the journal (a torn
last line, left by a process killed mid-write, is ignored with a warning), then compacts: a
fresh snapshot, then the journal truncated. Compaction runs again, synchronously, once the
journal outgrows ``max(journal_limit, 2 * snapshot size)`` (amortised O(1) per write; about
50 ms per 100k durable keys), and at :meth:`StateFile.close` (the store's ``close``).

Durability: a mutation already answered survives a crash of the process (SIGKILL, OOM kill):
the kernel holds the appended bytes. It does not survive a power loss or kernel crash, since
nothing is fsynced per write; the snapshot is fsynced before each rename, the journal at clean
close. An unreadable or corrupt snapshot, or a corrupt journal line other than the last, is a
:class:`~server.store.base.StoreError` naming the file at start, never a silently empty store.
If an append fails (disk full), the change stays in memory, the journal is cut back to its last
whole record and the call raises :class:`~server.store.base.StoreUnavailable`; the key's next
write (a whole state) or the next snapshot persists it.
"""

from __future__ import annotations

import binascii
import fcntl
import json
import logging
import math
import os
import time
from base64 import b64decode, b64encode
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import orjson

from server.store.base import StoreError, StoreUnavailable
from server.store.bucket import BucketState

if TYPE_CHECKING:
    from server.store.memory import Entry, MemoryStore
    from server.throttle.admit import BucketSpec, QuotaSpec, UsageSpec

__all__ = ["DURABLE_PREFIXES", "JOURNAL_LIMIT", "StateFile"]

log = logging.getLogger("portway.store")

DURABLE_PREFIXES: tuple[str, ...] = ("{tb}:q:", "{tb}:u:", "pw:")
"""Quota counters, usage counters, and the API-key / usage-plan registry."""

JOURNAL_LIMIT = 8 * 1024 * 1024
"""Compact once the journal exceeds this many bytes (or twice the snapshot, if larger)."""

FORMAT = 1
_MODE = 0o600
_NL = orjson.OPT_APPEND_NEWLINE

_Value = bytes | dict[str, bytes] | set[str]
_State = dict[str, tuple[_Value, float | None]]


class _Corrupt(ValueError):
    pass


def _dumps(document: object) -> bytes:
    """One JSON line (newlines inside strings are escaped, so a record never spans two)."""
    try:
        return orjson.dumps(document, option=_NL)
    except TypeError:  # a str orjson refuses (lone surrogates): the stdlib escapes them
        return json.dumps(document, ensure_ascii=True, separators=(",", ":")).encode() + b"\n"


def _loads(data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:  # escaped lone surrogates (see _dumps), or not JSON
        try:
            return json.loads(data)
        except ValueError as exc:
            raise _Corrupt(f"not JSON ({exc})") from None


def _record(key: str, entry: Entry | None, offset: float) -> dict[str, Any]:
    """What ``key`` holds now (``entry``; None: absent), its expiry shifted by ``offset``."""
    if entry is None:
        return {"k": key, "d": 1}
    value = entry.value
    expiry = None if entry.expires_at is None else entry.expires_at + offset
    if isinstance(value, bytes):
        try:
            return {"k": key, "x": expiry, "s": value.decode()}
        except UnicodeDecodeError:
            return {"k": key, "x": expiry, "b": b64encode(value).decode()}
    if isinstance(value, dict):
        return {"k": key, "x": expiry, "h": {f: b64encode(v).decode() for f, v in value.items()}}
    if isinstance(value, set):
        return {"k": key, "x": expiry, "m": list(value)}
    return {"k": key, "d": 1}  # a token bucket: never persisted


def _parse(record: Any) -> tuple[str, _Value | None, float | None]:
    """``(key, value, expiry)`` of one record; value None for a deletion."""
    try:
        key = record["k"]
        if not isinstance(key, str):
            raise _Corrupt("key is not a string")
        if "d" in record:
            return key, None, None
        expiry = record["x"]
        if expiry is not None and (type(expiry) not in (int, float) or not math.isfinite(expiry)):
            raise _Corrupt(f"bad expiry {expiry!r}")
        value: _Value
        if isinstance(text := record.get("s"), str):
            value = text.encode()
        elif isinstance(encoded := record.get("b"), str):
            value = b64decode(encoded, validate=True)
        elif isinstance(fields := record.get("h"), dict) and fields:
            value = {}
            for field, item in fields.items():
                if not isinstance(item, str):
                    raise _Corrupt("hash value is not a string")
                value[field] = b64decode(item, validate=True)
        elif isinstance(members := record.get("m"), list) and members:
            if not all(isinstance(m, str) for m in members):
                raise _Corrupt("set member is not a string")
            value = set(members)
        else:
            raise _Corrupt("no value")
    except (KeyError, TypeError, AttributeError, binascii.Error) as exc:
        raise _Corrupt(f"bad record ({exc!r})") from None
    return key, value, None if expiry is None else float(expiry)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class StateFile:
    """The durable keys of one :class:`~server.store.memory.MemoryStore` (see the module doc).

    The store calls :meth:`changed` (or :meth:`changed_many`, :meth:`admitted`) after every
    mutation, :meth:`load` in ``start`` and :meth:`close` in ``close``.
    """

    def __init__(
        self,
        store: MemoryStore,
        path: str | os.PathLike[str],
        prefixes: Sequence[str] = DURABLE_PREFIXES,
        *,
        clock: Callable[[], float],
        journal_limit: int = JOURNAL_LIMIT,
    ) -> None:
        self.path = os.fspath(path)
        self.journal_path = self.path + ".journal"
        self.prefixes = tuple(prefixes)
        self.journal_limit = journal_limit
        self._store = store
        self._clock = clock
        self._fd = -1  # the journal, open (and locked) from load to close
        self._size = 0  # journal bytes, all whole records
        self._snapshot_size = 0
        self._compact_at = journal_limit

    # -- the hot path: a record per changed durable key, one write per call ------------------

    def changed(self, key: str) -> None:
        """Record what ``key`` holds now, if it is durable."""
        if key.startswith(self.prefixes):
            offset = time.time() - self._clock()
            self._append(_dumps(_record(key, self._store._data.get(key), offset)))

    def changed_many(self, keys: Iterable[str]) -> None:
        durable = [key for key in keys if key.startswith(self.prefixes)]
        if durable:
            self._append_keys(durable)

    def admitted(
        self, buckets: Sequence[BucketSpec], quota: QuotaSpec | None, usage: UsageSpec | None, cost: int
    ) -> None:
        """After an allowed ``admit``: its counters (and a durable key a bucket replaced)."""
        prefixes, data = self.prefixes, self._store._data
        offset = time.time() - self._clock()
        out = b""
        for spec in buckets:
            if spec.key.startswith(prefixes):
                out += _dumps(_record(spec.key, data.get(spec.key), offset))
        if cost:
            if quota is not None and quota.key.startswith(prefixes):
                out += _dumps(_record(quota.key, data.get(quota.key), offset))
            if usage is not None and usage.key.startswith(prefixes):
                out += _dumps(_record(usage.key, data.get(usage.key), offset))
        if out:
            self._append(out)

    def _append_keys(self, keys: list[str]) -> None:
        data = self._store._data
        offset = time.time() - self._clock()
        self._append(b"".join([_dumps(_record(key, data.get(key), offset)) for key in keys]))

    def _append(self, data: bytes) -> None:
        fd = self._fd
        if fd < 0:
            raise StoreUnavailable(f"embedded store: state file {self.path} not loaded (call start() first)")
        try:
            written = os.write(fd, data)
            if written != len(data):  # a short write (disk nearly full): finish it or fail
                _write_all(fd, data[written:])
        except OSError as exc:
            self._cut_back()
            raise StoreUnavailable(f"cannot append to {self.journal_path}: {exc}") from exc
        self._size += len(data)
        if self._size > self._compact_at:
            self._compact_quietly()

    def _cut_back(self) -> None:
        """Drop a partly written record, so that the journal ends with a whole one again."""
        try:
            os.ftruncate(self._fd, self._size)
        except OSError as exc:  # pragma: no cover - shrinking a file barely fails
            log.error("cannot truncate %s after a failed append: %s", self.journal_path, exc)

    # -- load, compact, close ----------------------------------------------------------------

    def load(self) -> None:
        """Lock the journal, read snapshot + journal into the store, then compact."""
        if self._fd >= 0:
            return
        try:
            fd = os.open(self.journal_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, _MODE)
        except OSError as exc:
            raise StoreError(f"cannot open state journal {self.journal_path}: {exc}") from exc
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise StoreError(f"state file {self.path} is in use by another store or process") from None
            os.fchmod(fd, _MODE)
            state: _State = {}
            self._load_snapshot(state)
            self._replay_journal(state)
            self._restore(state)
            self._fd = fd
            self._size = os.fstat(fd).st_size
            self._compact()
        except BaseException as exc:
            self._fd = -1
            os.close(fd)
            if isinstance(exc, OSError):
                raise StoreError(f"cannot write state file {self.path}: {exc}") from exc
            raise
        log.info("state file %s: %d durable key(s) loaded", self.path, len(state))

    def close(self) -> None:
        """Fsync the journal, write the final snapshot, release the lock."""
        fd = self._fd
        if fd < 0:
            return
        try:
            os.fsync(fd)
            self._compact()
        except OSError as exc:  # the journal still holds every record: nothing is lost
            log.error("state file %s: final snapshot failed (the journal is kept): %s", self.path, exc)
        finally:
            self._fd = -1
            os.close(fd)

    @staticmethod
    def _read(path: str) -> bytes | None:
        try:
            with open(path, "rb") as file:
                return file.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"cannot read state file {path}: {exc}") from exc

    def _load_snapshot(self, state: _State) -> None:
        data = self._read(self.path)
        if data is None:
            return
        try:
            document = _loads(data)
            if not isinstance(document, dict) or document.get("portway_state") != FORMAT:
                raise _Corrupt(f"not a Portway state snapshot (format {FORMAT})")
            records = document["keys"]
            if not isinstance(records, list):
                raise _Corrupt("'keys' is not a list")
            self._apply(records, state)
        except (_Corrupt, KeyError) as exc:
            raise StoreError(
                f"state file {self.path} is corrupt ({exc}): restore it from a backup, or remove it "
                "and its .journal to start empty"
            ) from None

    def _replay_journal(self, state: _State) -> None:
        data = self._read(self.journal_path)
        if not data:
            return
        end = data.rfind(b"\n") + 1
        if end < len(data):
            log.warning(
                "state journal %s: ignoring a torn last record (%d bytes)", self.journal_path, len(data) - end
            )
        if not end:
            return
        try:
            # Every record is one line without raw newlines: the whole journal is one JSON array.
            records = orjson.loads(b"[" + data[: end - 1].replace(b"\n", b",") + b"]")
        except orjson.JSONDecodeError:  # find the bad line (or parse the stdlib's escapes)
            records = []
            for number, line in enumerate(data[: end - 1].split(b"\n"), start=1):
                try:
                    records.append(_loads(line))
                except _Corrupt as exc:
                    raise StoreError(
                        f"state journal {self.journal_path}: line {number} is corrupt: {exc}"
                    ) from None
        try:
            self._apply(records, state)
        except _Corrupt as exc:
            raise StoreError(f"state journal {self.journal_path}: {exc}") from None

    def _apply(self, records: list[Any], state: _State) -> None:
        prefixes = self.prefixes
        for number, record in enumerate(records, start=1):
            try:
                key, value, expiry = _parse(record)
            except _Corrupt as exc:
                raise _Corrupt(f"record {number}: {exc}") from None
            if not key.startswith(prefixes):
                continue
            if value is None:
                state.pop(key, None)
            else:
                state[key] = (value, expiry)

    def _restore(self, state: _State) -> None:
        store, wall = self._store, time.time()
        for key, (value, expiry) in state.items():
            if expiry is None:
                store._put(key, value, None)
            elif expiry > wall:
                store._put(key, value, expiry - wall)

    def _compact(self) -> None:
        """Write a fresh snapshot (temp file, fsync, rename), then empty the journal."""
        now = self._clock()
        offset = time.time() - now
        prefixes = self.prefixes
        records = [
            _record(key, entry, offset)
            for key, entry in self._store._data.items()
            if key.startswith(prefixes)
            and (entry.expires_at is None or entry.expires_at > now)
            and type(entry.value) is not BucketState
        ]
        blob = _dumps({"portway_state": FORMAT, "saved_at": time.time(), "keys": records})
        tmp = self.path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, _MODE)
        try:
            os.fchmod(fd, _MODE)
            _write_all(fd, blob)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        _fsync_dir(os.path.dirname(os.path.abspath(self.path)))
        os.ftruncate(self._fd, 0)  # after the rename: a crash in between replays it (idempotent)
        self._size = 0
        self._snapshot_size = len(blob)
        self._compact_at = max(self.journal_limit, 2 * len(blob))

    def _compact_quietly(self) -> None:
        started = time.perf_counter()
        try:
            self._compact()
        except OSError as exc:  # keep appending: the journal still holds everything
            self._compact_at = 2 * self._size
            log.error("state file %s: compaction failed (retried later): %s", self.path, exc)
            return
        log.info(
            "state file %s: compacted to %d bytes in %.1f ms",
            self.path,
            self._snapshot_size,
            (time.perf_counter() - started) * 1e3,
        )


def _fsync_dir(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:  # pragma: no cover - some file systems refuse directory descriptors
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)
