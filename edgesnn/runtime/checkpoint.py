"""Checkpoints of the learned state: written atomically, checksummed, the last N kept.

Every component that has ``checkpoint_state() -> (arrays, meta)`` and
``restore_state(arrays, meta)`` (the `snn` network: weights, traces, thresholds, eligibilities,
step counter and model manifest; readouts with learned assignments) is saved every
``[checkpoint] interval_s`` and when the daemon stops (SIGTERM), into ``[checkpoint] dir``:

- ``ckpt-<seq>.npz``: the arrays, as ``<component>/<name>`` (numpy npz, never pickle);
- ``ckpt-<seq>.json``: the commit record: format, sequence number, time, pipeline, the size
  and SHA-256 of the npz, and each component's JSON meta.

Each file is written to a temporary name, flushed and fsync'ed, renamed into place, and the
directory is fsync'ed; the JSON goes last, so a checkpoint exists only once both are complete.
On start the newest checkpoint whose npz matches its recorded size and checksum is restored;
a truncated or corrupted one is reported (log + ``corrupt`` counter) and the previous one is
used. A directory that cannot be written (full or read-only disk, a file in its place) is
reported (log + ``failed`` counter + ``last_error``) and the daemon keeps serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
import logging
import os
import re
import time
from pathlib import Path
from typing import Any

import numpy as np

from edgesnn.components import Component

log = logging.getLogger("edgesnn.checkpoint")

FORMAT = "edgesnn-checkpoint"
VERSION = 1
_NAME = re.compile(r"^ckpt-(\d{10})\.json$")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomic(path: Path, data: bytes) -> None:
    """Write data to path via a temporary file, fsync and rename (the caller fsyncs the dir)."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


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
        self.pipeline = pipeline
        self.written = 0
        self.failed = 0
        self.corrupt = 0
        self.restored: str | None = None
        self.last_error = ""
        self.last_path = ""
        self.last_written_unix = 0.0

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
        for cid, comp in comps.items():
            a, meta = comp.checkpoint_state()  # type: ignore[attr-defined]
            for k, v in a.items():
                arrays[f"{cid}/{k}"] = np.ascontiguousarray(v)
            metas[cid] = meta
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        payload = buf.getvalue()
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            seq = (self.checkpoints()[0][0] + 1) if self.checkpoints() else 1
            stem = f"ckpt-{seq:010d}"
            npz = self.dir / f"{stem}.npz"
            record = {
                "format": FORMAT,
                "version": VERSION,
                "seq": seq,
                "created_unix": time.time(),
                "pipeline": self.pipeline,
                "npz": npz.name,
                "size": len(payload),
                "sha256": hashlib.sha256(payload).hexdigest(),
                "components": metas,
            }
            _write_atomic(npz, payload)
            _fsync_dir(self.dir)
            path = self.dir / f"{stem}.json"
            _write_atomic(path, json.dumps(record, default=_json_default).encode())
            _fsync_dir(self.dir)
        except OSError as e:
            self.failed += 1
            self.last_error = f"{type(e).__name__}: {e}"
            log.error("checkpoint to %s failed (%s); still serving", self.dir, self.last_error)
            return None
        self.written += 1
        self.last_path = str(path)
        self.last_written_unix = record["created_unix"]
        log.info("checkpoint %s written (%d bytes)", path.name, len(payload))
        self._prune()
        return path

    def _prune(self) -> None:
        for _, path in self.checkpoints()[self.keep :]:
            for p in (path, path.with_suffix(".npz")):
                with contextlib.suppress(OSError):
                    p.unlink()
        with contextlib.suppress(OSError):
            for n in os.listdir(self.dir):
                if n.startswith(".ckpt-") and n.endswith(".tmp"):
                    (self.dir / n).unlink()

    # --- reading --------------------------------------------------------------------------

    def load(self, path: Path) -> tuple[dict[str, Any], dict[str, dict[str, np.ndarray]]]:
        """The record and per-component arrays of one checkpoint; ValueError when it is
        truncated, corrupted or not a checkpoint."""
        try:
            record = json.loads(path.read_bytes())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"unreadable record: {e}") from None
        if not isinstance(record, dict) or record.get("format") != FORMAT:
            raise ValueError("not an edgesnn checkpoint record")
        if record.get("version") != VERSION:
            raise ValueError(f"checkpoint version {record.get('version')} is not {VERSION}")
        npz = self.dir / str(record.get("npz", ""))
        try:
            payload = npz.read_bytes()
        except OSError as e:
            raise ValueError(f"missing arrays file: {e}") from None
        if len(payload) != record.get("size"):
            raise ValueError(f"arrays file has {len(payload)} bytes, {record.get('size')} written")
        if hashlib.sha256(payload).hexdigest() != record.get("sha256"):
            raise ValueError("arrays file checksum mismatch")
        try:
            with np.load(io.BytesIO(payload), allow_pickle=False) as z:
                flat = {k: z[k] for k in z.files}
        except (OSError, ValueError) as e:
            raise ValueError(f"arrays file unreadable: {e}") from None
        per: dict[str, dict[str, np.ndarray]] = {}
        for key, arr in flat.items():
            cid, _, name = key.partition("/")
            per.setdefault(cid, {})[name] = arr
        return record, per

    def restore(self, components: dict[str, Component]) -> Path | None:
        """Restore the newest valid checkpoint into the components; its path, or None."""
        comps = learned_components(components)
        if not comps:
            return None
        for _, path in self.checkpoints():
            try:
                record, per = self.load(path)
            except ValueError as e:
                self.corrupt += 1
                self.last_error = f"{path.name}: {e}"
                log.error("checkpoint %s is damaged (%s); trying the previous one", path.name, e)
                continue
            for cid, comp in comps.items():
                meta = record.get("components", {}).get(cid)
                if meta is None or cid not in per:
                    log.warning("checkpoint %s has no state for %r", path.name, cid)
                    continue
                try:
                    comp.restore_state(per[cid], meta)  # type: ignore[attr-defined]
                except ValueError as e:
                    self.last_error = f"{path.name}: {cid}: {e}"
                    log.error("checkpoint %s does not fit %r (%s); it starts fresh",
                              path.name, cid, e)
            self.restored = path.name
            log.info("restored checkpoint %s (seq %d)", path.name, record.get("seq", 0))
            return path
        return None

    # --- running --------------------------------------------------------------------------

    async def run(self, components: dict[str, Component]) -> None:
        """Checkpoint every interval_s until cancelled (writing in a worker thread)."""
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await asyncio.to_thread(self.save, components)
            except Exception as e:  # a component failing to give its state is reported
                self.failed += 1
                self.last_error = f"{type(e).__name__}: {e}"
                log.error("checkpoint failed: %s", self.last_error)

    def status(self) -> dict[str, Any]:
        """Counters for the heartbeat / status endpoint."""
        return {
            "dir": str(self.dir),
            "written": self.written,
            "failed": self.failed,
            "corrupt": self.corrupt,
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
