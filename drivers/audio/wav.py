"""WAV files: a streaming RIFF/WAVE reader, the `wav` replay driver and `edgesnn info` support.

Reads RIFF (little-endian), RIFX (big-endian) and RF64 (sizes in the `ds64` chunk) containers
with PCM 8 (unsigned) / 16 / 24 / 32-bit, IEEE float 32 / 64, A-law and mu-law samples, plain or
WAVE_FORMAT_EXTENSIBLE (the real format is the first two bytes of the SubFormat GUID), any
number of channels. Unknown chunks (LIST, fact, PEAK, cue ...) are skipped, odd-sized chunks are
followed by their pad byte. The data chunk is read in bounded chunks of frames, so memory does
not grow with the file. A header that does not follow the format, or a data chunk that claims
more bytes than the file holds, raises `FormatError` with the byte offset.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from edgesnn_drivers.audio.pcm import PcmFormat, decode, decode_native

from edgesnn.components import register
from edgesnn.config.schema import Field, Schema
from edgesnn.errors import FormatError
from edgesnn.events import EventBatch
from edgesnn.replay import REPLAY_SCHEMA, ReplayDriver

WAVE_FORMAT_PCM = 1
WAVE_FORMAT_IEEE_FLOAT = 3
WAVE_FORMAT_ALAW = 6
WAVE_FORMAT_MULAW = 7
WAVE_FORMAT_EXTENSIBLE = 0xFFFE
#: bytes 2..15 of every KSDATAFORMAT_SUBTYPE_* GUID derived from a WAVE format tag
_GUID_TAIL = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
_TAG_NAMES = {1: "pcm", 3: "float", 6: "a-law", 7: "mu-law", 0xFFFE: "extensible"}
#: refuse absurd header chunk counts instead of walking a corrupt file forever
_MAX_CHUNKS = 10_000


@dataclass
class WavInfo:
    """What the header of a WAV file says; offsets are bytes from the file start."""

    container: str  # "RIFF", "RIFX" or "RF64"
    format_tag: int  # the effective tag (the SubFormat's for EXTENSIBLE)
    extensible: bool
    channels: int
    sample_rate_hz: int
    bits_per_sample: int
    valid_bits: int
    block_align: int
    channel_mask: int
    data_offset: int
    data_bytes: int
    file_bytes: int
    pcm: PcmFormat
    chunks: list[tuple[str, int, int]] = field(default_factory=list)  # (id, offset, size)
    trailing_bytes: int = 0  # bytes after the last whole frame of the data chunk

    @property
    def frames(self) -> int:
        return self.data_bytes // self.block_align

    @property
    def duration_s(self) -> float:
        return self.frames / self.sample_rate_hz


def _pcm_format(tag: int, bits: int, container: int, big: bool, off: int) -> PcmFormat:
    if tag == WAVE_FORMAT_PCM:
        if container not in (1, 2, 3, 4):
            raise FormatError(f"PCM with {container}-byte samples is not supported", offset=off)
        return PcmFormat("uint" if container == 1 else "int", container, big)
    if tag == WAVE_FORMAT_IEEE_FLOAT:
        if container not in (4, 8):
            raise FormatError(f"float samples of {container} bytes are not supported", offset=off)
        return PcmFormat("float", container, big)
    if tag in (WAVE_FORMAT_ALAW, WAVE_FORMAT_MULAW):
        if container != 1:
            raise FormatError("G.711 samples must be 1 byte", offset=off)
        return PcmFormat("alaw" if tag == WAVE_FORMAT_ALAW else "ulaw", 1)
    raise FormatError(f"unsupported WAVE format tag 0x{tag:04x}", offset=off)


def read_header(f: BinaryIO, path: str | None = None, *, strict: bool = True) -> WavInfo:
    """Walk the chunks of an open WAV file up to and including fmt and data.

    `strict=False` accepts a data chunk that claims more bytes than the file holds (a recording
    that was cut short) and reads what is there.
    """
    f.seek(0, os.SEEK_END)
    file_bytes = f.tell()
    f.seek(0)
    head = f.read(12)
    if len(head) < 12:
        raise FormatError(f"file of {len(head)} bytes is too short for a RIFF header",
                          offset=len(head), path=path)
    cid = head[:4]
    if cid not in (b"RIFF", b"RIFX", b"RF64"):
        raise FormatError(f"not a RIFF file (starts with {cid!r})", offset=0, path=path)
    if head[8:12] != b"WAVE":
        raise FormatError(f"RIFF form type {head[8:12]!r} is not WAVE", offset=8, path=path)
    big = cid == b"RIFX"
    e = ">" if big else "<"
    pos = 12
    chunks: list[tuple[str, int, int]] = []
    fmt: dict[str, Any] | None = None
    data: tuple[int, int] | None = None
    ds64_data: int | None = None
    while len(chunks) < _MAX_CHUNKS:
        if fmt is not None and data is not None:
            break
        f.seek(pos)
        hdr = f.read(8)
        if len(hdr) < 8:
            what = "fmt " if fmt is None else "data"
            raise FormatError(f"file ends before a '{what}' chunk", offset=pos, path=path)
        ck = hdr[:4]
        (size,) = struct.unpack(e + "I", hdr[4:])
        name = ck.decode("latin-1")
        body = pos + 8
        if cid == b"RF64" and ck == b"ds64":
            if size < 24:
                raise FormatError(f"ds64 chunk of {size} bytes is too short", offset=pos,
                                  path=path)
            b = f.read(24)
            if len(b) < 24:
                raise FormatError("file ends inside the ds64 chunk", offset=body + len(b),
                                  path=path)
            (ds64_data,) = struct.unpack(e + "Q", b[8:16])
        elif ck == b"fmt ":
            if size < 16:
                raise FormatError(f"fmt chunk of {size} bytes (need 16)", offset=pos, path=path)
            b = f.read(min(size, 64))
            if len(b) < 16 or len(b) < min(size, 64):
                raise FormatError("file ends inside the fmt chunk", offset=body + len(b),
                                  path=path)
            tag, ch, rate, _byte_rate, align, bits = struct.unpack(e + "HHIIHH", b[:16])
            valid, mask, ext = bits, 0, False
            if tag == WAVE_FORMAT_EXTENSIBLE:
                if size < 40 or len(b) < 40:
                    raise FormatError(
                        f"WAVE_FORMAT_EXTENSIBLE fmt chunk of {size} bytes (need 40)",
                        offset=pos, path=path,
                    )
                valid, mask = struct.unpack(e + "HI", b[18:24])
                guid = b[24:40]
                if guid[2:] != _GUID_TAIL:
                    raise FormatError(f"unsupported SubFormat GUID {guid.hex()}",
                                      offset=body + 24, path=path)
                (tag,) = struct.unpack("<H", guid[:2])
                ext = True
                valid = valid or bits
            fmt = dict(tag=tag, ch=ch, rate=rate, align=align, bits=bits, valid=valid,
                       mask=mask, ext=ext, off=body)
        elif ck == b"data":
            if cid == b"RF64" and size == 0xFFFFFFFF:
                if ds64_data is None:
                    raise FormatError("RF64 data chunk without a ds64 size", offset=pos,
                                      path=path)
                size = ds64_data
            data = (body, size)
        chunks.append((name, pos, size))
        nxt = body + size + (size & 1)
        if nxt > file_bytes and ck != b"data":
            raise FormatError(
                f"chunk '{name}' claims {size} bytes but the file ends at {file_bytes}",
                offset=pos, path=path,
            )
        pos = nxt
    else:
        raise FormatError(f"more than {_MAX_CHUNKS} chunks before the samples", offset=pos,
                          path=path)
    assert fmt is not None and data is not None
    ch, rate, align, bits = fmt["ch"], fmt["rate"], fmt["align"], fmt["bits"]
    off = fmt["off"]
    if ch < 1:
        raise FormatError("fmt chunk says 0 channels", offset=off + 2, path=path)
    if rate < 1:
        raise FormatError("fmt chunk says a sample rate of 0", offset=off + 4, path=path)
    if align < 1 or align % ch:
        raise FormatError(f"block align {align} is not a multiple of {ch} channels",
                          offset=off + 12, path=path)
    container = align // ch
    if not 0 < bits <= 8 * container:
        raise FormatError(f"{bits} bits per sample do not fit {container}-byte samples",
                          offset=off + 14, path=path)
    pcm = _pcm_format(fmt["tag"], bits, container, big, off)
    body, size = data
    avail = file_bytes - body
    if size > avail:
        if strict:
            raise FormatError(
                f"data chunk claims {size} bytes but only {avail} remain (truncated file)",
                offset=file_bytes, path=path,
            )
        size = avail
    return WavInfo(
        container=cid.decode(), format_tag=fmt["tag"], extensible=fmt["ext"], channels=ch,
        sample_rate_hz=rate, bits_per_sample=bits, valid_bits=fmt["valid"], block_align=align,
        channel_mask=fmt["mask"], data_offset=body, data_bytes=size - size % align,
        file_bytes=file_bytes, pcm=pcm, chunks=chunks, trailing_bytes=size % align,
    )


class WavReader:
    """A WAV file opened for streaming: `header`, then `chunks()` of decoded frames."""

    def __init__(self, path: str | os.PathLike[str], *, strict: bool = True):
        self.path = str(path)
        self._f: BinaryIO = open(self.path, "rb")  # noqa: SIM115 - closed by close()/with
        try:
            self.header = read_header(self._f, self.path, strict=strict)
        except BaseException:
            self._f.close()
            raise

    def __enter__(self) -> WavReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._f.close()

    def chunks(self, frames: int = 4096, *, native: bool = False,
               start_frame: int = 0) -> Iterator[np.ndarray]:
        """(n, channels) arrays of at most `frames` frames each, float32 in [-1, 1) unless
        `native` (the stored integers / floats)."""
        h = self.header
        frames = max(1, int(frames))
        pos = h.data_offset + start_frame * h.block_align
        end = h.data_offset + h.data_bytes
        step = frames * h.block_align
        conv = decode_native if native else decode
        while pos < end:
            self._f.seek(pos)
            want = min(step, end - pos)
            raw = self._f.read(want)
            if len(raw) < want:
                raise FormatError(f"file ends {want - len(raw)} bytes early inside the samples",
                                  offset=pos + len(raw), path=self.path)
            pos += want
            yield conv(raw, h.pcm, h.channels)

    def read(self, *, native: bool = False) -> np.ndarray:
        """The whole file as one (frames, channels) array (small files, tests)."""
        parts = list(self.chunks(1 << 16, native=native))
        if not parts:
            dt = np.float32 if not native else decode_native(b"", self.header.pcm, 1).dtype
            return np.zeros((0, self.header.channels), dt)
        return np.concatenate(parts)


def read_wav(path: str | os.PathLike[str], *, native: bool = False) -> tuple[int, np.ndarray]:
    """(sample_rate_hz, (frames, channels) array) of a whole WAV file."""
    with WavReader(path) as r:
        return r.header.sample_rate_hz, r.read(native=native)


def frame_time_us(frame: int, rate_hz: int) -> int:
    """Time of frame `frame` from the stream start, floor-rounded to whole µs."""
    return (int(frame) * 1_000_000) // int(rate_hz)


@register
class WavDriver(ReplayDriver):
    """Replays a WAV file as "samples" batches (float32 frames x channels)."""

    type_name = "wav"
    batch_kind = "samples"
    summary = "WAV file replay (PCM 8/16/24/32, float, extensible, multichannel)."
    schema = REPLAY_SCHEMA | Schema(
        {
            "channels": Field(("list", int), default=[],
                              doc="Channel indices to keep, in order; [] keeps all."),
            "allow_truncated": Field(bool, default=False,
                                     doc="Read a cut-short data chunk instead of failing."),
        }
    )

    def __init__(self, id: str, params: dict[str, Any], ctx: Any):
        super().__init__(id, params, ctx)
        self._header: WavInfo | None = None
        self.frames_read = 0

    def header(self) -> WavInfo:
        if self._header is None:
            with WavReader(self.resolve_path(), strict=not self.params["allow_truncated"]) as r:
                self._header = r.header
        return self._header

    def check(self, inputs: list[Any]) -> list[str]:
        if not os.path.exists(self.resolve_path()):
            return []  # may be given at run time (--set); a clear error at start
        try:
            h = self.header()
        except (OSError, FormatError) as e:
            return [str(e)]
        bad = [c for c in self.params["channels"] if not 0 <= c < h.channels]
        return [f"channels {bad} out of range for a {h.channels}-channel file"] if bad else []

    def sensor_shape(self) -> tuple[int, ...]:
        try:
            n = self.header().channels
        except (OSError, FormatError):
            return ()
        return (len(self.params["channels"]) or n,)

    def iter_batches(self) -> Iterator[EventBatch]:
        path = self.resolve_path()
        with WavReader(path, strict=not self.params["allow_truncated"]) as r:
            h = r.header
            self._header = h
            rate = h.sample_rate_hz
            per = max(1, -(-rate * int(self.params["batch_us"]) // 1_000_000))
            sel = self.params["channels"] or None
            meta = {"sample_rate_hz": rate, "channels": len(sel) if sel else h.channels,
                    "source": path}
            frame = 0
            for block in r.chunks(per):
                if sel:
                    block = np.ascontiguousarray(block[:, sel])
                n = block.shape[0]
                yield EventBatch(self.id, 0, frame_time_us(frame, rate),
                                 frame_time_us(frame + n, rate), block, "samples", 0, meta)
                frame += n
                self.frames_read += n

    def status(self) -> dict[str, Any]:
        return {"frames_read": self.frames_read}


# --- edgesnn info ------------------------------------------------------------------------------


def probe_file(path: str, head: bytes) -> str | None:
    """"wav" when the file is a RIFF/RIFX/RF64 WAVE container."""
    if len(head) >= 12 and head[:4] in (b"RIFF", b"RIFX", b"RF64") and head[8:12] == b"WAVE":
        return "wav"
    return None


def info_file(path: str, fmt: str) -> dict[str, Any]:
    """Format, channels, rate, bits, frames, duration and peak of a WAV file (one pass)."""
    with WavReader(path) as r:
        h = r.header
        peak = 0.0
        for block in r.chunks(1 << 16, native=True):
            if block.size:
                if h.pcm.kind == "uint":
                    m = float(np.abs(block.astype(np.int32) - 128).max())
                else:
                    m = float(np.abs(block.astype(np.float64)).max())
                peak = max(peak, m)
    return {
        "format": "wav",
        "container": h.container,
        "encoding": h.pcm.name,
        "format_tag": _TAG_NAMES.get(h.format_tag, f"0x{h.format_tag:04x}"),
        "extensible": h.extensible,
        "channels": h.channels,
        "sample_rate_hz": h.sample_rate_hz,
        "bits_per_sample": h.bits_per_sample,
        "valid_bits": h.valid_bits,
        "frames": h.frames,
        "duration_s": round(h.duration_s, 6),
        "data_offset": h.data_offset,
        "data_bytes": h.data_bytes,
        "trailing_bytes": h.trailing_bytes,
        "chunks": [c[0] for c in h.chunks],
        "peak_abs": int(peak) if h.pcm.kind != "float" else peak,
    }


# --- edgesnn bench io --------------------------------------------------------------------------


def _fsdd_files(data_dir: Path, limit: int = 60) -> list[Path]:
    return sorted((data_dir / "audio" / "fsdd").glob("*.wav"))[:limit]


def bench_io_cases(data_dir: Path) -> list[dict[str, Any]]:
    """WAV decoding and cochlea filterbank encoding of 8 kHz FSDD speech, for `bench io`."""
    files = _fsdd_files(Path(data_dir))
    if not files:
        return []

    def decode_all() -> int:
        n = 0
        for p in files:
            with WavReader(p) as r:
                for block in r.chunks(8192):
                    n += block.shape[0]
        return n

    cases: list[dict[str, Any]] = [
        {"format": "wav", "file": f"audio/fsdd ({len(files)} files, 8 kHz s16)",
         "unit": "frames", "run": decode_all, "realtime_items_per_s": 8000.0,
         "target": {"x_realtime": 200}},
    ]
    audio = np.concatenate([read_wav(p)[1] for p in files])

    per = 80  # 10 ms batches at 8 kHz
    batches = [EventBatch("bench", 0, frame_time_us(i, 8000),
                          frame_time_us(i + audio[i : i + per].shape[0], 8000),
                          audio[i : i + per], "samples", 0, {"sample_rate_hz": 8000})
               for i in range(0, audio.shape[0], per)]  # fmt: skip
    # the encoder is built by edgesnn bench io (edgesnn.benchmarks.io), not by this driver
    cases.append({"format": "wav+cochlea", "file": "audio/fsdd, 32 bands, dt 1 ms",
                  "unit": "samples", "realtime_items_per_s": 8000.0,
                  "encode": {"encoder": "cochlea", "params": {}, "dt_us": 1000,
                             "batches": batches, "items": int(audio.shape[0])},
                  "target": {"x_realtime": 200}})
    return cases
