"""Raw PCM sample formats and their decoding to float32 frames, shared by WAV and live PCM.

A `PcmFormat` names how one sample is stored (container bytes, signedness, integer or float,
byte order). `decode()` turns whole frames of interleaved bytes into a (frames, channels)
float32 array scaled to [-1, 1) (integers are divided by 2**(container bits - 1); 8-bit PCM is
unsigned with an offset of 128, as in WAV), and `decode_native()` returns the stored numbers
unscaled (24-bit samples sign-extended into int32), for exact comparison with other readers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgesnn.errors import FormatError


@dataclass(frozen=True, slots=True)
class PcmFormat:
    """How one sample is stored: `kind` is "int", "uint", "float", "alaw" or "ulaw"."""

    kind: str
    container_bytes: int
    big_endian: bool = False

    @property
    def name(self) -> str:
        if self.kind in ("alaw", "ulaw"):
            return "a-law" if self.kind == "alaw" else "mu-law"
        e = "be" if self.big_endian else "le"
        if self.kind == "float":
            return f"float{self.container_bytes * 8}{e}"
        if self.container_bytes == 1:
            return "pcm_u8" if self.kind == "uint" else "pcm_s8"
        return f"pcm_s{self.container_bytes * 8}{e}"


#: arecord / ALSA sample-format names accepted by the live PCM drivers.
ALSA_FORMATS: dict[str, PcmFormat] = {
    "U8": PcmFormat("uint", 1),
    "S8": PcmFormat("int", 1),
    "S16_LE": PcmFormat("int", 2),
    "S16_BE": PcmFormat("int", 2, True),
    "S24_3LE": PcmFormat("int", 3),
    "S24_3BE": PcmFormat("int", 3, True),
    "S32_LE": PcmFormat("int", 4),
    "S32_BE": PcmFormat("int", 4, True),
    "FLOAT_LE": PcmFormat("float", 4),
    "FLOAT64_LE": PcmFormat("float", 8),
    "A_LAW": PcmFormat("alaw", 1),
    "MU_LAW": PcmFormat("ulaw", 1),
}


def _g711_tables() -> tuple[np.ndarray, np.ndarray]:
    """16-bit linear values of every A-law and mu-law byte (ITU-T G.711)."""
    a = np.empty(256, np.int16)
    u = np.empty(256, np.int16)
    for i in range(256):
        v = i ^ 0x55
        t = (v & 0x0F) << 4
        seg = (v & 0x70) >> 4
        if seg == 0:
            t += 8
        elif seg == 1:
            t += 0x108
        else:
            t = (t + 0x108) << (seg - 1)
        a[i] = t if v & 0x80 else -t
        w = ~i & 0xFF
        t = ((w & 0x0F) << 3) + 0x84
        t <<= (w & 0x70) >> 4
        u[i] = (0x84 - t) if w & 0x80 else (t - 0x84)
    return a, u


_G711: tuple[np.ndarray, np.ndarray] | None = None


def _g711() -> tuple[np.ndarray, np.ndarray]:
    global _G711
    if _G711 is None:
        _G711 = _g711_tables()
    return _G711


def decode_native(
    raw: bytes | memoryview | np.ndarray, fmt: PcmFormat, channels: int
) -> np.ndarray:
    """Stored sample values as a (frames, channels) array; `raw` must hold whole frames."""
    buf = np.frombuffer(raw, np.uint8) if not isinstance(raw, np.ndarray) else raw.view(np.uint8)
    frame_bytes = fmt.container_bytes * channels
    if buf.size % frame_bytes:
        raise FormatError(f"{buf.size} bytes is not a whole number of {frame_bytes}-byte frames")
    n = buf.size // frame_bytes
    order = ">" if fmt.big_endian else "<"
    cb = fmt.container_bytes
    if fmt.kind == "float":
        out = buf.view(f"{order}f{cb}").astype(f"f{cb}", copy=False)
    elif fmt.kind == "alaw":
        out = _g711()[0][buf]
    elif fmt.kind == "ulaw":
        out = _g711()[1][buf]
    elif cb == 3:
        b = buf.reshape(-1, 3).astype(np.int32)
        if fmt.big_endian:
            v = (b[:, 0] << 16) | (b[:, 1] << 8) | b[:, 2]
        else:
            v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        out = (v << 8) >> 8  # sign-extend 24 -> 32 bits
    else:
        code = ("u" if fmt.kind == "uint" else "i") + str(cb)
        out = buf.view(f"{order}{code}" if cb > 1 else code).astype(code, copy=False)
    return out.reshape(n, channels)


def decode(raw: bytes | memoryview | np.ndarray, fmt: PcmFormat, channels: int) -> np.ndarray:
    """Samples as float32 (frames, channels), integers scaled to [-1, 1)."""
    v = decode_native(raw, fmt, channels)
    if fmt.kind == "float":
        with np.errstate(over="ignore"):  # a float64 beyond float32's range is +-inf, as a
            return v.astype(np.float32, copy=False)  # float32 stream's own inf would be
    if fmt.kind in ("alaw", "ulaw"):
        return v.astype(np.float32) * np.float32(1.0 / 32768.0)
    if fmt.kind == "uint":
        half = 1 << (8 * fmt.container_bytes - 1)
        return (v.astype(np.float32) - np.float32(half)) * np.float32(1.0 / half)
    scale = 1.0 / float(1 << (8 * fmt.container_bytes - 1))
    return v.astype(np.float32) * np.float32(scale)
