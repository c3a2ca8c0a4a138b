"""Replay of recorded spike trains (``.npz``, CSR over steps) as SPIKE records.

The file is the spike format of ``edgesnn train`` and ``edgesnn deploy --check-on`` (see
`edgesnn.train.data`): ``in_ptr`` int64 (steps + 1) and ``in_idx`` int32, the spikes of step k
being ``in_idx[in_ptr[k]:in_ptr[k+1]]``, with optional ``dt_us`` (default 1000), ``n_inputs``
and ``format = "edgesnn-spikes"``; other arrays (``sample_ptr``, ``labels``, weights ...) are
ignored. Spike trains from other tools drive any network once written in this form::

    np.savez("spikes.npz", in_ptr=ptr, in_idx=idx, dt_us=np.int64(1000))

The `spike_file` driver emits "records" batches of `edgesnn.events.SPIKE` (t = step x dt_us,
channel), `batch_us` of sensor time each, paced by `speed` (realtime / max / a factor) and
optionally looping; the `spikes` encoder bins them at the pipeline's dt. A file that breaks a
rule is refused with a `FormatError` naming the array, the element and its byte offset.
"""

from __future__ import annotations

import math
import re
import struct
import tokenize
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgesnn.components import register
from edgesnn.config.schema import Field, Schema
from edgesnn.errors import FormatError
from edgesnn.events import SPIKE, EventBatch
from edgesnn.replay import REPLAY_SCHEMA, ReplayDriver, regular_file

#: arrays read from a spike file (everything else in the npz is ignored)
SPIKE_ARRAYS = ("in_ptr", "in_idx", "dt_us", "n_inputs", "format")


@dataclass
class SpikeFile:
    """Input spikes as CSR over steps of `dt_us`, checked (sorted, unique within a step)."""

    in_ptr: np.ndarray  # int64 (n_steps + 1)
    in_idx: np.ndarray  # int32
    n_channels: int
    dt_us: int
    path: str = ""

    @property
    def n_steps(self) -> int:
        return int(self.in_ptr.shape[0] - 1)

    @property
    def n_spikes(self) -> int:
        return int(self.in_idx.shape[0])


@dataclass
class _Member:
    """Where an array's data lies in the npz (for byte offsets in errors)."""

    data_offset: int  # first byte of the member's (possibly compressed) data
    header_len: int  # length of the .npy header inside the member
    itemsize: int
    stored: bool  # uncompressed: element offsets are exact

    def element_offset(self, i: int | None) -> int:
        """Offset of element i (of the array's first element when i is None; of the
        compressed data when the member is deflated)."""
        if not self.stored:
            return self.data_offset
        return self.data_offset + self.header_len + (i or 0) * self.itemsize


def _data_offset(f: Any, info: zipfile.ZipInfo) -> int:
    f.seek(info.header_offset)
    local = f.read(30)
    if len(local) < 30 or local[:4] != b"PK\x03\x04":
        raise FormatError(f"zip member {info.filename} has no local header",
                          offset=info.header_offset)  # fmt: skip
    name_len, extra_len = struct.unpack("<HH", local[26:30])
    return info.header_offset + 30 + name_len + extra_len


def _read_arrays(path: str) -> tuple[dict[str, np.ndarray], dict[str, _Member]]:
    try:
        regular_file(path)
        with open(path, "rb") as f:
            head = f.read(4)
            size = f.seek(0, 2)
    except FileNotFoundError:
        raise FormatError("no such file", path=path) from None
    except OSError as e:
        raise FormatError(f"cannot read ({e.strerror or e})", path=path) from None
    if head[:2] != b"PK":
        raise FormatError("not an .npz spike file (no zip signature)", offset=0, path=path)
    arrays: dict[str, np.ndarray] = {}
    members: dict[str, _Member] = {}
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError,
            struct.error) as e:
        raise FormatError(f"not a readable .npz (zip directory: {e})", offset=size,
                          path=path) from None  # fmt: skip
    with zf, open(path, "rb") as raw:
        for key in SPIKE_ARRAYS:
            try:
                info = zf.getinfo(key + ".npy")
            except KeyError:
                continue
            try:
                off = _data_offset(raw, info)
            except (OSError, ValueError, struct.error) as e:
                raise FormatError(f"array {key}: zip member not found ({e})",
                                  offset=info.header_offset, path=path) from None  # fmt: skip
            try:
                with zf.open(info) as m:
                    version = np.lib.format.read_magic(m)  # 6 + 2 bytes
                    if version == (1, 0):
                        shape, fortran, dtype = np.lib.format.read_array_header_1_0(m)
                    else:
                        shape, fortran, dtype = np.lib.format.read_array_header_2_0(m)
                    header_len = m.tell()
                    if dtype.hasobject:
                        raise ValueError("object arrays are not allowed")
                    nbytes = math.prod(shape) * dtype.itemsize
                    # the header's shape must match the member's size before anything is
                    # allocated: a damaged header must not ask for terabytes
                    if nbytes != info.file_size - header_len or info.file_size > size * 1032:
                        raise ValueError(f"header says {nbytes} data bytes, the member holds "
                                         f"{info.file_size - header_len}")
                    data = bytearray(nbytes)
                    got, view = 0, memoryview(data)
                    while got < nbytes:
                        n = m.readinto(view[got:])
                        if not n:
                            raise ValueError(f"{got} of {nbytes} data bytes")
                        got += n
                arr = np.frombuffer(data, dtype).reshape(shape, order="F" if fortran else "C")
            except (ValueError, OSError, EOFError, zipfile.BadZipFile, struct.error, zlib.error,
                    NotImplementedError, RuntimeError, OverflowError, MemoryError, SyntaxError,
                    tokenize.TokenError, TypeError, KeyError, IndexError) as e:
                raise FormatError(f"array {key}: cannot read ({type(e).__name__}: {e})",
                                  offset=off, path=path) from None  # fmt: skip
            arrays[key] = arr
            members[key] = _Member(off, header_len, arr.dtype.itemsize,
                                   info.compress_type == zipfile.ZIP_STORED)  # fmt: skip
    return arrays, members


def _offset_of(message: str, arrays: dict[str, np.ndarray], members: dict[str, _Member]
               ) -> int | None:  # fmt: skip
    """Byte offset of the array element a validation message names (data start otherwise)."""
    dup = re.match(r"channel (\d+) spikes twice in step (\d+)", message)
    if dup and "in_idx" in members:
        c, k = int(dup.group(1)), int(dup.group(2))
        ptr = arrays["in_ptr"].astype(np.int64)
        row = arrays["in_idx"][ptr[k] : ptr[k + 1]]
        hits = np.flatnonzero(row == c)
        return members["in_idx"].element_offset(int(ptr[k] + hits[1]) if hits.size > 1 else None)
    m = re.match(r"(\w+)", message)
    name = m.group(1) if m else ""
    if name not in members:
        return None
    el = re.search(r"\[(\d+)\]|element (\d+)", message)
    i = int(el.group(1) or el.group(2)) if el else None
    if i is None and name == "in_ptr" and "ends at" in message:
        i = int(arrays["in_ptr"].size - 1)
    elif i is None and name == "in_ptr" and "start" in message:
        i = 0
    return members[name].element_offset(i)


def load_spike_file(path: str | Path, n_channels: int = 0, dt_us: int = 0) -> SpikeFile:
    """Read and check a spike file; `n_channels` / `dt_us` (when > 0) override the file's.

    The rules are those of the training / check-set format (`SpikeDataset.from_arrays`);
    a broken rule is a `FormatError` naming the array, the element and its byte offset.
    """
    from edgesnn.train.data import SpikeDataset

    p = str(path)
    arrays, members = _read_arrays(p)
    missing = [k for k in ("in_ptr", "in_idx") if k not in arrays]
    if missing:
        raise FormatError(
            f"lacks {' and '.join(a + '.npy' for a in missing)} (a spike file holds in_ptr: "
            "int64 steps + 1, and in_idx: int32)",
            offset=0, path=p,
        )
    ptr = arrays["in_ptr"]
    if ptr.ndim != 1 or ptr.size < 2:
        raise FormatError(f"in_ptr must be one-dimensional with at least 2 entries (one step), "
                          f"has shape {ptr.shape}", offset=members["in_ptr"].element_offset(None),
                          path=p)  # fmt: skip
    data = dict(arrays)
    # one sample spanning the file: the dataset checks then cover exactly the spike rules
    data["sample_ptr"] = np.array([0, ptr.size - 1], np.int64)
    data["labels"] = np.zeros(1, np.int64)
    if n_channels > 0:
        data["n_inputs"] = np.array(n_channels, np.int64)
    try:
        ds = SpikeDataset.from_arrays(data, "")
    except FormatError as e:
        msg = str(e)
        raise FormatError(msg, offset=_offset_of(msg, arrays, members), path=p) from None
    except (TypeError, ValueError) as e:  # e.g. a non-scalar dt_us / n_inputs
        raise FormatError(f"bad scalar array ({e})", offset=0, path=p) from None
    return SpikeFile(ds.in_ptr, ds.in_idx, int(ds.n_inputs), int(dt_us or ds.dt_us), p)


def save_spike_file(path: str | Path, in_ptr: np.ndarray, in_idx: np.ndarray,
                    dt_us: int = 1000, n_channels: int = 0) -> None:  # fmt: skip
    """Write spikes (CSR over steps) as a spike file (the format of the module docstring)."""
    arrays: dict[str, np.ndarray] = {
        "in_ptr": np.asarray(in_ptr, np.int64),
        "in_idx": np.asarray(in_idx, np.int32),
        "dt_us": np.array(int(dt_us), np.int64),
        "format": np.array("edgesnn-spikes"),
    }
    if n_channels:
        arrays["n_inputs"] = np.array(int(n_channels), np.int64)
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def spike_batches(sf: SpikeFile, stream: str, batch_us: int) -> Iterator[EventBatch]:
    """SPIKE record batches covering [0, n_steps * dt_us) in windows of `batch_us`."""
    dt = sf.dt_us
    t_total = sf.n_steps * dt
    meta = {"n_channels": sf.n_channels, "dt_us": dt}
    w = 0
    while w < t_total:
        w_end = min(w + batch_us, t_total)
        k0, k1 = -(-w // dt), min(sf.n_steps, -(-w_end // dt))  # steps starting in [w, w_end)
        a, b = int(sf.in_ptr[k0]), int(sf.in_ptr[k1])
        ev = np.empty(b - a, SPIKE)
        counts = np.diff(sf.in_ptr[k0 : k1 + 1])
        ev["t"] = np.repeat(np.arange(k0, k1, dtype=np.int64) * dt, counts)
        ev["channel"] = sf.in_idx[a:b]
        yield EventBatch(stream, 0, w, w_end, ev, "records", 0, meta)
        w = w_end


@register
class SpikeFileDriver(ReplayDriver):
    """Replays a spike file (CSR over steps) as SPIKE records, paced and optionally looping."""

    type_name = "spike_file"
    batch_kind = "records"
    summary = "Recorded input spikes (.npz: in_ptr, in_idx[, dt_us]) as SPIKE records."
    schema = REPLAY_SCHEMA | Schema(
        {
            "n_channels": Field(int, default=0, min=0, doc="Input channels (0: the file's "
                                "n_inputs, else its highest channel + 1)."),  # fmt: skip
            "dt_us": Field(int, default=0, min=0, doc="Step of the file's raster in µs (0: the "
                           "file's dt_us, else 1000)."),  # fmt: skip
        }
    )

    def __init__(self, id: str, params: dict[str, Any], ctx: Any):
        super().__init__(id, params, ctx)
        self._file: SpikeFile | None = None
        self.spikes = 0
        self.steps = 0
        self.loops = 0

    def load(self) -> SpikeFile:
        """The checked spike file (read once, kept for loops)."""
        if self._file is None:
            self._file = load_spike_file(self.require_file(), self.params["n_channels"],
                                         self.params["dt_us"])  # fmt: skip
        return self._file

    def sensor_shape(self) -> tuple[int, ...]:
        if self.params["n_channels"]:
            return (self.params["n_channels"],)
        try:
            return (self.load().n_channels,)
        except (FormatError, OSError):
            return ()  # reported when the driver starts

    def iter_batches(self) -> Iterator[EventBatch]:
        sf = self.load()
        for b in spike_batches(sf, self.id, self.params["batch_us"]):
            self.spikes += len(b)
            self.steps += -(-(b.t_end_us - b.t_start_us) // sf.dt_us)
            yield b
        self.loops += 1

    def status(self) -> dict[str, Any]:
        return {"spikes": self.spikes, "steps": self.steps, "loops": self.loops}


# --- edgesnn info -------------------------------------------------------------------------


def probe_file(path: str, head: bytes) -> str | None:
    """"edgesnn-spikes" for an npz holding in_ptr and in_idx (spike, training or check files)."""
    if head[:4] != b"PK\x03\x04" or b".npy" not in head:
        return None
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError,
            struct.error):
        return None
    return "edgesnn-spikes" if {"in_ptr.npy", "in_idx.npy"} <= names else None


def info_file(path: str, fmt: str) -> dict[str, Any]:
    """Steps, spikes, channels, dt and mean rate of a spike file."""
    sf = load_spike_file(path)
    duration_s = sf.n_steps * sf.dt_us / 1e6
    return {
        "format": fmt,
        "steps": sf.n_steps,
        "dt_us": sf.dt_us,
        "duration_s": duration_s,
        "channels": sf.n_channels,
        "spikes": sf.n_spikes,
        "rate_hz_per_channel": round(sf.n_spikes / (sf.n_channels * duration_s), 3)
        if duration_s > 0 and sf.n_channels else 0.0,
    }
