"""Checkpoints of the learned state: written atomically, checksummed, the last N kept.

Every component that has ``checkpoint_state() -> (arrays, meta)`` and
``restore_state(arrays, meta)`` (the `snn` network: weights, traces, thresholds, eligibilities,
step counter and model manifest; readouts with learned assignments) is saved every
``[checkpoint] interval_s`` and when the daemon stops (SIGTERM), into ``[checkpoint] dir``:

- ``ckpt-<seq>.npz``: the arrays, as ``<component>/<name>`` (numpy npz, never pickle);
- ``ckpt-<seq>.json``: the commit record: format, sequence number, time, pipeline, the size
  and SHA-256 of the npz, each component's JSON meta, and the SHA-256 of the record itself
  (``record_sha256``, over its canonical JSON without that key).

Writers (the periodic task, ``POST /checkpoint``, the final one at SIGTERM) are serialised by
one lock, and every temporary file has a unique name. Each file is written to its temporary
name, flushed and fsync'ed, renamed into place, and the directory is fsync'ed; the JSON goes
last, so a checkpoint exists only once both are complete. Before writing, the checkpoints
beyond ``keep - 1`` are pruned; when the write still fails (a full disk), older checkpoints are
pruned down to the newest good one and the write is tried once more. Pruning never deletes the
newest checkpoint that verifies.

On start the newest checkpoint that loads (record well-formed and checksummed, npz a plain file
of the folder matching its recorded size and checksum) and fits every component (for an `snn`
network: the manifest, every array's shape and dtype, and the same full table validation as
`Network.load`, so no kernel can index out of range) is restored;
one that is damaged or does not fit is reported (log + ``corrupt`` / ``unfit`` counters) and
the previous one is tried; ``restored`` names the one actually restored (None: a fresh start).
A directory that cannot be written (full or read-only disk, a file in its place) is reported
(log + ``failed`` counter + ``last_error``) and the daemon keeps serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import io
import json
import logging
import math
import os
import re
import stat
import struct
import threading
import time
import tokenize
import uuid
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from edgesnn.components import Component

log = logging.getLogger("edgesnn.checkpoint")

FORMAT = "edgesnn-checkpoint"
VERSION = 2
#: record versions restored (1: before the record carried its own checksum)
READABLE_VERSIONS = (1, 2)
_NAME = re.compile(r"^ckpt-(\d{10})\.json$")
_MAX_SEQ = 10**10 - 1
#: largest record and arrays file read back (a damaged or planted file is refused, not read)
MAX_RECORD_BYTES = 64 << 20
DEFAULT_MAX_NPZ_BYTES = 4 << 30


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomic(path: Path, data: bytes) -> None:
    """Write data to path via a uniquely named temporary file, fsync and rename (the caller
    fsyncs the directory)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        with open(tmp, "xb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def record_digest(record: dict[str, Any]) -> str:
    """SHA-256 of a record's canonical JSON without its `record_sha256` key."""
    body = {k: v for k, v in record.items() if k != "record_sha256"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), default=_json_default)
    return hashlib.sha256(text.encode()).hexdigest()


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def check_record(record: Any, json_name: str) -> None:
    """ValueError naming the first field of a commit record that is missing or mistyped (the
    record of `json_name`: its npz must be the same stem in the same folder)."""
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise ValueError("not an edgesnn checkpoint record")
    version = record.get("version")
    if not _is_int(version) or version not in READABLE_VERSIONS:
        raise ValueError(f"checkpoint version {version!r} is not one of {READABLE_VERSIONS}")
    if version >= 2:
        digest = record.get("record_sha256")
        if not isinstance(digest, str) or digest != record_digest(record):
            raise ValueError("record checksum mismatch")
    expect_npz = json_name[: -len(".json")] + ".npz"
    checks: tuple[tuple[str, Any, str], ...] = (
        ("seq", lambda v: _is_int(v) and 0 < v <= _MAX_SEQ, "a positive integer"),
        ("npz", lambda v: v == expect_npz, f"the name {expect_npz!r}"),
        ("size", lambda v: _is_int(v) and v >= 0, "a byte count"),
        ("sha256", lambda v: isinstance(v, str) and re.fullmatch(r"[0-9a-f]{64}", v),
         "a SHA-256 hex digest"),
        ("components", lambda v: isinstance(v, dict)
         and all(isinstance(k, str) and isinstance(m, dict) for k, m in v.items()),
         "an object of per-component objects"),
        ("created_unix", lambda v: isinstance(v, int | float) and not isinstance(v, bool)
         and math.isfinite(v), "a number"),
    )
    for key, ok, what in checks:
        if key not in record:
            raise ValueError(f"record lacks {key!r}")
        if not ok(record[key]):
            raise ValueError(f"record field {key!r} is not {what}: {str(record[key])[:80]!r}")
    if f"ckpt-{record['seq']:010d}.json" != json_name:
        raise ValueError(f"record seq {record['seq']} does not match its name {json_name}")


def _read_arrays(payload: bytes) -> dict[str, np.ndarray]:
    """The arrays of an npz payload, each member checked to hold exactly its declared array
    before anything is allocated; ValueError otherwise (never pickle)."""
    out: dict[str, np.ndarray] = {}
    try:
        with zipfile.ZipFile(io.BytesIO(payload)) as zf:
            for info in zf.infolist():
                if not info.filename.endswith(".npy"):
                    raise ValueError(f"unexpected member {info.filename!r}")
                if info.compress_type != zipfile.ZIP_STORED or info.file_size > len(payload):
                    raise ValueError(f"member {info.filename!r} is compressed or oversized")
                with zf.open(info) as m:
                    version = np.lib.format.read_magic(m)
                    if version == (1, 0):
                        shape, fortran, dtype = np.lib.format.read_array_header_1_0(m)
                    else:
                        shape, fortran, dtype = np.lib.format.read_array_header_2_0(m)
                    if dtype.hasobject:
                        raise ValueError(f"member {info.filename!r} holds objects")
                    nbytes = math.prod(shape) * dtype.itemsize
                    if nbytes != info.file_size - m.tell():
                        raise ValueError(f"member {info.filename!r}: header says {nbytes} "
                                         f"bytes, {info.file_size - m.tell()} stored")
                    data = m.read(nbytes)
                arr = np.frombuffer(data, dtype).copy()
                out[info.filename[: -len(".npy")]] = arr.reshape(
                    shape, order="F" if fortran else "C")
    except (zipfile.BadZipFile, OSError, EOFError, struct.error, NotImplementedError,
            RuntimeError, KeyError, TypeError, OverflowError, MemoryError, SyntaxError,
            tokenize.TokenError, IndexError) as e:
        raise ValueError(f"{type(e).__name__}: {e}") from None
    return out


def learned_components(components: dict[str, Component]) -> dict[str, Component]:
    """The components that can be checkpointed."""
    return {
        cid: c
        for cid, c in components.items()
        if callable(getattr(c, "checkpoint_state", None))
        and callable(getattr(c, "restore_state", None))
    }


class Checkpointer:
    """Writes, prunes and restores the checkpoints of one pipeline's learned state."""

    def __init__(self, settings: dict[str, Any], pipeline: str = "pipeline") -> None:
        self.dir = Path(settings["dir"])
        self.interval_s = float(settings.get("interval_s", 60.0))
        self.keep = max(1, int(settings.get("keep", 3)))
        self.max_npz_bytes = int(settings.get("max_bytes", DEFAULT_MAX_NPZ_BYTES))
        self.pipeline = pipeline
        self.written = 0
        self.failed = 0
        self.corrupt = 0
        self.unfit = 0
        self.pruned = 0
        self.restored: str | None = None
        self.last_error = ""
        self.last_path = ""
        self.last_written_unix = 0.0
        #: one writer at a time (periodic task, POST /checkpoint, the final one at SIGTERM)
        self.lock = threading.RLock()
        self._verified: dict[str, tuple[Any, bool]] = {}

    # --- listing --------------------------------------------------------------------------

    def checkpoints(self) -> list[tuple[int, Path]]:
        """(seq, json path) of every committed checkpoint, newest first."""
        try:
            names = os.listdir(self.dir)
        except OSError:
            return []
        out = []
        for n in names:
            m = _NAME.match(n)
            if m:
                out.append((int(m.group(1)), self.dir / n))
        return sorted(out, reverse=True)

    # --- writing --------------------------------------------------------------------------

    def save(self, components: dict[str, Component]) -> Path | None:
        """Checkpoint every learned component now; the JSON path, or None when nothing was
        written (no learned component, or the directory failed: reported and counted)."""
        comps = learned_components(components)
        if not comps:
            return None
        arrays: dict[str, np.ndarray] = {}
        metas: dict[str, Any] = {}
        try:
            for cid, comp in comps.items():
                a, meta = comp.checkpoint_state()  # type: ignore[attr-defined]
                for k, v in a.items():
                    arrays[f"{cid}/{k}"] = np.ascontiguousarray(v)
                metas[cid] = meta
            buf = io.BytesIO()
            np.savez(buf, **arrays)
            payload = buf.getvalue()
        except Exception as e:  # a component failing to give its state is reported
            return self._fail(e)
        with self.lock:
            try:
                self.dir.mkdir(parents=True, exist_ok=True)
                self._prune(self.keep - 1)  # room for the one about to be written
                try:
                    path, record = self._write(payload, metas)
                except OSError as e:
                    if e.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
                        raise
                    log.warning("checkpoint folder %s is full (%s); pruning to the newest "
                                "good checkpoint and trying again", self.dir, e)
                    self._prune(0)
                    path, record = self._write(payload, metas)
            except OSError as e:
                return self._fail(e)
            self.written += 1
            self.last_path = str(path)
            self.last_written_unix = record["created_unix"]
            log.info("checkpoint %s written (%d bytes)", path.name, len(payload))
            self._prune(self.keep)
            return path

    def _fail(self, e: BaseException) -> None:
        self.failed += 1
        self.last_error = f"{type(e).__name__}: {e}"
        log.error("checkpoint to %s failed (%s); still serving", self.dir, self.last_error)
        return None

    def _write(self, payload: bytes, metas: dict[str, Any]) -> tuple[Path, dict[str, Any]]:
        """Write one checkpoint (npz, then the record) under the next sequence number."""
        listed = self.checkpoints()
        seq = listed[0][0] + 1 if listed else 1
        if seq > _MAX_SEQ:
            raise OSError(errno.EOVERFLOW, f"sequence number {seq} exceeds {_MAX_SEQ}")
        stem = f"ckpt-{seq:010d}"
        npz = self.dir / f"{stem}.npz"
        record: dict[str, Any] = {
            "format": FORMAT,
            "version": VERSION,
            "seq": seq,
            "created_unix": time.time(),
            "pipeline": self.pipeline,
            "npz": npz.name,
            "size": len(payload),
            "sha256": hashlib.sha256(payload).hexdigest(),
            "components": json.loads(json.dumps(metas, default=_json_default)),
        }
        record["record_sha256"] = record_digest(record)
        path = self.dir / f"{stem}.json"
        try:
            _write_atomic(npz, payload)
            _fsync_dir(self.dir)
            _write_atomic(path, json.dumps(record).encode())
            _fsync_dir(self.dir)
        except BaseException:
            if not path.exists():
                with contextlib.suppress(OSError):
                    npz.unlink()
            raise
        return path, record

    def _prune(self, keep: int) -> None:
        """Keep the newest `keep` checkpoints that verify (never fewer than one when any
        does), delete the others, damaged ones and orphaned temporary or arrays files."""
        with self.lock:
            good = 0
            for _, path in self.checkpoints():
                ok = self._verifies(path)
                if ok and good < max(1, keep):
                    good += 1
                    continue
                if not ok and good == 0:
                    continue  # damaged and newer than every good one: left to be reported
                for p in (path, path.with_suffix(".npz")):
                    with contextlib.suppress(FileNotFoundError):
                        p.unlink()
                self.pruned += 1
            listed = {p.with_suffix(".npz").name for _, p in self.checkpoints()}
            with contextlib.suppress(OSError):
                for n in os.listdir(self.dir):
                    stale = n.startswith(".ckpt-") and n.endswith(".tmp")
                    orphan = re.fullmatch(r"ckpt-\d{10}\.npz", n) and n not in listed
                    if stale or orphan:
                        with contextlib.suppress(OSError):
                            (self.dir / n).unlink()

    def _verifies(self, path: Path) -> bool:
        """Whether a checkpoint loads (cached by the files' size and modification time)."""
        try:
            key = tuple((st.st_size, st.st_mtime_ns, st.st_ino) for st in
                        (os.stat(path), os.stat(path.with_suffix(".npz"))))
        except OSError:
            return False
        hit = self._verified.get(path.name)
        if hit is not None and hit[0] == key:
            return hit[1]
        try:
            self.load(path)
            ok = True
        except ValueError:
            ok = False
        self._verified[path.name] = (key, ok)
        return ok

    # --- reading --------------------------------------------------------------------------

    def load(self, path: Path) -> tuple[dict[str, Any], dict[str, dict[str, np.ndarray]]]:
        """The record and per-component arrays of one checkpoint; ValueError when it is
        truncated, corrupted, mistyped or not a checkpoint."""
        path = Path(path)
        try:
            if not stat.S_ISREG(os.lstat(path).st_mode):  # a FIFO would block the open
                raise ValueError("record is not a regular file")
            with open(path, "rb") as f:
                raw = f.read(MAX_RECORD_BYTES + 1)
            if len(raw) > MAX_RECORD_BYTES:
                raise ValueError(f"record larger than {MAX_RECORD_BYTES} bytes")
            record = json.loads(raw)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
            raise ValueError(f"unreadable record: {e}") from None
        check_record(record, path.name)
        size = record["size"]
        if size > self.max_npz_bytes:
            raise ValueError(f"arrays file of {size} bytes exceeds {self.max_npz_bytes}")
        npz = path.with_name(record["npz"])  # same folder, same stem (checked above)
        try:
            st = os.lstat(npz)
            if not stat.S_ISREG(st.st_mode):
                raise ValueError("arrays file is not a regular file")
            if st.st_size != size:
                raise ValueError(f"arrays file has {st.st_size} bytes, {size} written")
            with open(npz, "rb") as f:
                payload = f.read(size + 1)
        except OSError as e:
            raise ValueError(f"missing arrays file: {e}") from None
        if len(payload) != size:
            raise ValueError(f"arrays file has {len(payload)} bytes, {size} written")
        if hashlib.sha256(payload).hexdigest() != record["sha256"]:
            raise ValueError("arrays file checksum mismatch")
        flat = _read_arrays(payload)
        per: dict[str, dict[str, np.ndarray]] = {}
        for key, arr in flat.items():
            cid, _, name = key.partition("/")
            per.setdefault(cid, {})[name] = arr
        return record, per

    def restore(self, components: dict[str, Component]) -> Path | None:
        """Restore the newest checkpoint that loads and fits every component; its path, or
        None (a fresh start). Damaged and non-fitting checkpoints are reported and skipped."""
        comps = learned_components(components)
        if not comps:
            return None
        with self.lock:
            self.restored = None
            for _, path in self.checkpoints():
                try:
                    record, per = self.load(path)
                except ValueError as e:
                    self.corrupt += 1
                    self.last_error = f"{path.name}: {e}"
                    log.error("checkpoint %s is damaged (%s); trying the previous one",
                              path.name, e)
                    continue
                if self._apply(path, record, per, comps):
                    self.restored = path.name
                    log.info("restored checkpoint %s (seq %d)", path.name, record["seq"])
                    return path
            if self.corrupt or self.unfit:
                log.warning("no checkpoint in %s loads and fits; starting fresh", self.dir)
            return None

    def _apply(self, path: Path, record: dict[str, Any], per: dict[str, dict[str, np.ndarray]],
               comps: dict[str, Component]) -> bool:
        """Restore one checkpoint into every component, or none of them (rolled back)."""
        before: dict[str, tuple[dict[str, np.ndarray], dict[str, Any]]] = {}
        for cid, comp in comps.items():
            meta = record["components"].get(cid)
            if meta is None:
                log.warning("checkpoint %s has no state for %r", path.name, cid)
                continue
            try:
                before[cid] = comp.checkpoint_state()  # type: ignore[attr-defined]
                comp.restore_state(per.get(cid, {}), meta)  # type: ignore[attr-defined]
            except Exception as e:
                self.unfit += 1
                self.last_error = f"{path.name}: {cid}: {type(e).__name__}: {e}"
                log.error("checkpoint %s does not fit %r (%s); trying the previous one",
                          path.name, cid, e)
                for rid, (arrays, m) in before.items():
                    try:
                        comps[rid].restore_state(arrays, m)  # type: ignore[attr-defined]
                    except Exception as e2:
                        log.error("could not roll %r back after %s: %s", rid, path.name, e2)
                return False
        return True

    # --- running --------------------------------------------------------------------------

    async def run(self, components: dict[str, Component]) -> None:
        """Checkpoint every interval_s until cancelled (writing in a worker thread)."""
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await asyncio.to_thread(self.save, components)
            except Exception as e:  # a component failing to give its state is reported
                self._fail(e)

    def status(self) -> dict[str, Any]:
        """Counters for the heartbeat / status endpoint."""
        return {
            "dir": str(self.dir),
            "written": self.written,
            "failed": self.failed,
            "corrupt": self.corrupt,
            "unfit": self.unfit,
            "pruned": self.pruned,
            "restored": self.restored,
            "last_error": self.last_error,
            "last_path": self.last_path,
            "last_written_unix": self.last_written_unix,
        }


def _json_default(o: Any) -> Any:
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.generic):
        return o.item()
    return str(o)
