"""WAV reader and `wav` replay driver: real FSDD/scipy files, synthetic variants, bad input."""

from __future__ import annotations

import asyncio
import csv
import struct
import warnings
import wave
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from edgesnn_drivers.audio.wav import (
    WavDriver,
    WavReader,
    bench_io_cases,
    info_file,
    probe_file,
    read_wav,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgesnn.encoders.generic import built
from edgesnn.errors import FormatError

DATA = Path(__file__).parents[1].parent.parent / "shared" / "data"
FSDD = DATA / "audio" / "fsdd"
EDGE = DATA / "audio" / "format_edge_cases"


def need(p: Path) -> Path:
    if not p.exists():
        pytest.skip(f"shared recording {p} not present (../shared/data beside the repo)")
    return p


# --- a WAV writer independent of the reader -----------------------------------------------------

PCM_GUID_TAIL = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"


def make_wav(samples: bytes, *, channels: int, rate: int, bits: int, tag: int = 1,
             extensible: bool = False, container: bytes = b"RIFF", extra_chunks: bytes = b"",
             fmt_after_data: bool = False, block_align: int | None = None) -> bytes:
    e = ">" if container == b"RIFX" else "<"
    align = block_align if block_align is not None else channels * ((bits + 7) // 8)
    if extensible:
        fmt = struct.pack(e + "HHIIHHHHI", 0xFFFE, channels, rate, rate * align, align, bits,
                          22, bits, 0x3) + struct.pack("<H", tag) + PCM_GUID_TAIL
    else:
        fmt = struct.pack(e + "HHIIHH", tag, channels, rate, rate * align, align, bits)

    def chunk(cid: bytes, body: bytes) -> bytes:
        return cid + struct.pack(e + "I", len(body)) + body + (b"\x00" if len(body) % 2 else b"")

    parts = [chunk(b"fmt ", fmt), extra_chunks, chunk(b"data", samples)]
    if fmt_after_data:
        parts = [extra_chunks, chunk(b"data", samples), chunk(b"fmt ", fmt)]
    body = b"WAVE" + b"".join(parts)
    return container + struct.pack(e + "I", len(body)) + body


def ref_decode(raw: bytes, width: int, kind: str, big: bool = False) -> list[float]:
    """Obvious per-sample decoding, for comparison with the vectorised reader."""
    out = []
    for i in range(0, len(raw), width):
        b = raw[i:i + width]
        if kind == "float":
            out.append(struct.unpack((">" if big else "<") + ("f" if width == 4 else "d"), b)[0])
        elif kind == "u8":
            out.append((b[0] - 128) / 128)
        else:
            v = int.from_bytes(b, "big" if big else "little", signed=True)
            out.append(v / 2 ** (8 * width - 1))
    return out


# --- real files ---------------------------------------------------------------------------------


def test_fsdd_every_file_matches_the_index() -> None:
    index = need(FSDD / "index.csv")
    rows = list(csv.DictReader(index.open()))
    assert len(rows) == 600
    total = 0
    lengths = []
    for r in rows:
        with WavReader(FSDD / r["file"]) as w:
            h = w.header
            assert (h.format_tag, h.channels, h.sample_rate_hz, h.bits_per_sample) == (1, 1, 8000, 16)
            assert [c[0] for c in h.chunks] == ["fmt ", "data"]
            assert h.frames == int(r["frames"])
            x = w.read(native=True)
        assert x.shape == (int(r["frames"]), 1)
        assert int(np.abs(x.astype(np.int32)).max()) == int(r["peak_abs"])
        total += h.frames
        lengths.append(h.frames)
    assert total == 2_090_459
    assert (min(lengths), max(lengths)) == (1148, 10504)
    assert min(lengths) / 8000 == pytest.approx(0.144, abs=6e-4)  # 0.1435 s, README rounds up
    assert max(lengths) / 8000 == pytest.approx(1.313, abs=6e-4)
    assert Counter(r["digit"] for r in rows) == {str(d): 60 for d in range(10)}
    assert Counter(r["speaker"] for r in rows) == {
        s: 100 for s in ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")}
    # the official test split is indices 0-4: 300 files here
    assert sum(int(r["index"]) <= 4 for r in rows) == 300
    assert sum((FSDD / r["file"]).stat().st_size for r in rows) == 4_207_318


def test_fsdd_examples_and_info() -> None:
    p = need(FSDD / "0_jackson_0.wav")
    assert read_wav(p)[1].shape == (5148, 1)
    q = need(FSDD / "7_theo_9.wav")
    assert probe_file(str(q), q.read_bytes()[:4096]) == "wav"
    info = info_file(str(q), "wav")
    assert info["frames"] == 3192 and q.stat().st_size == 6428
    assert info["channels"] == 1 and info["sample_rate_hz"] == 8000
    assert info["bits_per_sample"] == 16 and info["encoding"] == "pcm_s16le"
    assert info["duration_s"] == pytest.approx(3192 / 8000)


def test_info_command_hook_finds_wav() -> None:
    from edgesnn_drivers.info import info

    p = need(EDGE / "test-8000Hz-le-3ch-5S-24bit.wav")
    out = info(str(p))
    assert out["format"] == "wav" and out["frames"] == 5 and out["channels"] == 3


EDGE_TABLE = [
    # file, bytes, effective tag, extensible, ch, rate, bits, chunks, frames, scipy dtype
    ("test-44100Hz-2ch-32bit-float-le.wav", 3586, 3, False, 2, 44100, 32,
     ["fmt ", "fact", "data"], 441, "float32"),
    ("test-48000Hz-2ch-64bit-float-le-wavex.wav", 7792, 3, True, 2, 48000, 64,
     ["fmt ", "fact", "PEAK", "data"], 480, "float64"),
    ("test-44100Hz-le-1ch-4bytes.wav", 17720, 1, True, 1, 44100, 32,
     ["fmt ", "fact", "data"], 4410, "int32"),
    ("test-8000Hz-le-3ch-5S-24bit.wav", 90, 1, False, 3, 8000, 24, ["fmt ", "data"], 5, "int32"),
    ("test-8000Hz-le-2ch-1byteu.wav", 1644, 1, False, 2, 8000, 8, ["fmt ", "data"], 800, "uint8"),
]


#: chunk sizes stated in the README table: fmt(18), fmt(40), fmt(16), data(45, odd)
EDGE_CHUNK_SIZES = {
    "test-44100Hz-2ch-32bit-float-le.wav": {"fmt ": 18},
    "test-48000Hz-2ch-64bit-float-le-wavex.wav": {"fmt ": 40},
    "test-44100Hz-le-1ch-4bytes.wav": {"fmt ": 40},
    "test-8000Hz-le-3ch-5S-24bit.wav": {"fmt ": 16, "data": 45},
    "test-8000Hz-le-2ch-1byteu.wav": {"fmt ": 16},
}


@pytest.mark.parametrize("row", EDGE_TABLE, ids=[r[0] for r in EDGE_TABLE])
def test_scipy_edge_cases(row: tuple) -> None:
    import scipy.io.wavfile

    name, size, tag, ext, ch, rate, bits, chunks, frames, dtype = row
    p = need(EDGE / name)
    assert p.stat().st_size == size
    with WavReader(p) as w:
        h = w.header
        assert (h.format_tag, h.extensible, h.channels, h.sample_rate_hz) == (tag, ext, ch, rate)
        assert h.bits_per_sample == bits and [c[0] for c in h.chunks] == chunks
        sizes = {c[0]: c[2] for c in h.chunks}
        assert {k: sizes[k] for k in EDGE_CHUNK_SIZES[name]} == EDGE_CHUNK_SIZES[name]
        assert h.frames == frames
        native = w.read(native=True)
        scaled = w.read()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns about the chunks it skips
        _, ref = scipy.io.wavfile.read(p)
    ref = ref.reshape(frames, ch)
    assert native.dtype == np.dtype(dtype) and native.shape == (frames, ch)
    if bits == 24:  # scipy left-justifies 24-bit samples in int32
        ref = ref >> 8
    np.testing.assert_array_equal(native, ref)
    assert scaled.dtype == np.float32
    raw = p.read_bytes()[h.data_offset:h.data_offset + h.data_bytes]
    kind = "float" if tag == 3 else ("u8" if bits == 8 else "int")
    np.testing.assert_allclose(scaled.ravel(), ref_decode(raw, h.block_align // ch, kind),
                               rtol=1e-6, atol=1e-7)


# --- synthetic variants ---------------------------------------------------------------------------


@pytest.mark.parametrize("bits", [8, 16, 24, 32])
@pytest.mark.parametrize("channels", [1, 2, 5])
@pytest.mark.parametrize("extensible", [False, True])
def test_pcm_widths_channels_extensible(bits: int, channels: int, extensible: bool,
                                        tmp_path: Path) -> None:
    rng = np.random.default_rng(bits * 10 + channels)
    width = bits // 8
    raw = rng.integers(0, 256, size=37 * channels * width, dtype=np.uint8).tobytes()
    p = tmp_path / "x.wav"
    p.write_bytes(make_wav(raw, channels=channels, rate=16000, bits=bits, extensible=extensible,
                           extra_chunks=b"LIST\x03\x00\x00\x00abc\x00"))
    rate, x = read_wav(p)
    assert rate == 16000 and x.shape == (37, channels)
    ref = ref_decode(raw, width, "u8" if bits == 8 else "int")
    np.testing.assert_allclose(x.ravel(), ref, rtol=1e-6, atol=0)


def test_python_wave_module_file(tmp_path: Path) -> None:
    p = tmp_path / "w.wav"
    v = (np.sin(np.arange(1000) / 7.0) * 20000).astype("<i2")
    with wave.open(str(p), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(22050)
        w.writeframes(np.repeat(v, 2).tobytes())
    rate, x = read_wav(p, native=True)
    assert rate == 22050 and x.shape == (1000, 2)
    np.testing.assert_array_equal(x[:, 0], v)
    np.testing.assert_array_equal(x[:, 1], v)


@pytest.mark.parametrize("bits", [32, 64])
def test_float_rifx_and_fmt_after_data(bits: int, tmp_path: Path) -> None:
    vals = np.array([0.0, 0.5, -0.25, 1.0, -1.0, 0.125], np.float64)
    for big in (False, True):
        e = ">" if big else "<"
        raw = vals.astype(f"{e}f{bits // 8}").tobytes()
        p = tmp_path / f"f{bits}{big}.wav"
        p.write_bytes(make_wav(raw, channels=2, rate=1000, bits=bits, tag=3,
                               container=b"RIFX" if big else b"RIFF", fmt_after_data=not big))
        rate, x = read_wav(p)
        assert rate == 1000
        np.testing.assert_array_equal(x.ravel(), vals.astype(np.float32))


def test_rifx_int16(tmp_path: Path) -> None:
    v = np.array([1, -2, 300, -32768, 32767], ">i2")
    p = tmp_path / "b.wav"
    p.write_bytes(make_wav(v.tobytes(), channels=1, rate=8000, bits=16, container=b"RIFX"))
    _, x = read_wav(p, native=True)
    np.testing.assert_array_equal(x[:, 0], v.astype(np.int16))


def test_rf64_sizes_from_ds64(tmp_path: Path) -> None:
    v = np.arange(-50, 50, dtype="<i2")
    fmt = struct.pack("<HHIIHH", 1, 1, 8000, 16000, 2, 16)
    ds64 = struct.pack("<QQQI", 0, v.nbytes, v.size, 0)
    body = (b"WAVE" + b"ds64" + struct.pack("<I", len(ds64)) + ds64
            + b"fmt " + struct.pack("<I", 16) + fmt + b"data" + b"\xff\xff\xff\xff" + v.tobytes())
    p = tmp_path / "r.wav"
    p.write_bytes(b"RF64\xff\xff\xff\xff" + body)
    with WavReader(p) as w:
        assert w.header.container == "RF64" and w.header.frames == 100
        np.testing.assert_array_equal(w.read(native=True)[:, 0], v)


def test_g711(tmp_path: Path) -> None:
    codes = bytes(range(256))
    for tag in (6, 7):
        p = tmp_path / f"g{tag}.wav"
        p.write_bytes(make_wav(codes, channels=1, rate=8000, bits=8, tag=tag))
        _, x = read_wav(p, native=True)
        x = x[:, 0].astype(int)
        if tag == 6:  # A-law: 0xD5 and 0x55 are the two smallest magnitudes
            assert (x[0xD5], x[0x55], x[0xAA], x[0x2A]) == (8, -8, 32256, -32256)
        else:  # mu-law: 0xFF/0x7F are zero, 0x80/0x00 the extremes
            assert (x[0xFF], x[0x7F], x[0x80], x[0x00]) == (0, 0, 32124, -32124)
        assert len(set(x.tolist())) >= 254


def test_trailing_partial_frame_is_counted(tmp_path: Path) -> None:
    p = tmp_path / "t.wav"
    p.write_bytes(make_wav(b"\x01\x00\x02\x00\x03", channels=1, rate=8000, bits=16))
    with WavReader(p) as w:
        assert w.header.frames == 2 and w.header.trailing_bytes == 1


# --- bad input ----------------------------------------------------------------------------------


def _good(tmp_path: Path) -> bytes:
    raw = np.arange(-20, 20, dtype="<i2").tobytes()
    return make_wav(raw, channels=2, rate=8000, bits=16,
                    extra_chunks=b"junk\x05\x00\x00\x00abcde\x00")


def test_every_truncation_is_a_format_error_with_offset(tmp_path: Path) -> None:
    good = _good(tmp_path)
    p = tmp_path / "cut.wav"
    for n in range(len(good)):
        p.write_bytes(good[:n])
        with pytest.raises(FormatError) as e, WavReader(p) as w:
            w.read()
        assert e.value.offset is not None and 0 <= e.value.offset <= len(good), n


def test_truncated_data_can_be_read_when_allowed(tmp_path: Path) -> None:
    good = _good(tmp_path)
    p = tmp_path / "cut.wav"
    p.write_bytes(good[:-10])
    with pytest.raises(FormatError, match="truncated"):
        WavReader(p)
    with WavReader(p, strict=False) as w:
        assert w.header.frames == 20 - 3  # 80 data bytes - 10 = 70 -> 17 whole frames
        assert w.read().shape == (17, 2)


@pytest.mark.parametrize(
    "patch, where, match",
    [
        ((0, b"JUNK"), 0, "not a RIFF"),
        ((8, b"AVI "), 8, "not WAVE"),
        ((22, b"\x00\x00"), 22, "0 channels"),
        ((32, b"\x03\x00"), 32, "block align"),
        ((20, b"\x99\x00"), 20, "format tag"),
        ((34, b"\x40\x00"), 34, "bits per sample"),
    ],
)
def test_corrupt_headers(tmp_path: Path, patch: tuple[int, bytes], where: int, match: str
                         ) -> None:
    b = bytearray(_good(tmp_path))
    off, new = patch
    b[off:off + len(new)] = new
    p = tmp_path / "bad.wav"
    p.write_bytes(bytes(b))
    with pytest.raises(FormatError, match=match) as e:
        WavReader(p)
    assert e.value.offset is not None and e.value.offset >= where - 20


def test_bad_extensible_guid(tmp_path: Path) -> None:
    b = bytearray(make_wav(b"\x00" * 8, channels=1, rate=8000, bits=16, extensible=True))
    b[12 + 8 + 26] ^= 0xFF  # inside the GUID tail
    p = tmp_path / "g.wav"
    p.write_bytes(bytes(b))
    with pytest.raises(FormatError, match="GUID"):
        WavReader(p)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=300))
def test_fuzz_random_bytes(tmp_path: Path, data: bytes) -> None:
    p = tmp_path / "fuzz.wav"
    p.write_bytes(data)
    try:
        with WavReader(p) as w:
            w.read()
    except FormatError:
        pass


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=6),
       cut=st.integers(0, 400))
def test_fuzz_mutated_wav(tmp_path: Path, edits: list[tuple[int, int]], cut: int) -> None:
    b = bytearray(_good(tmp_path))
    for i, v in edits:
        if i < len(b):
            b[i] = v
    p = tmp_path / "mut.wav"
    p.write_bytes(bytes(b[:cut]))
    try:
        with WavReader(p) as w:
            x = w.read()
            assert x.shape[1] == w.header.channels
            info_file(str(p), "wav")
    except FormatError:
        pass


# --- replay driver --------------------------------------------------------------------------------


async def _collect(driver: WavDriver) -> list:
    return [b async for b in driver.batches()]


def test_wav_driver_replays_in_order() -> None:
    p = need(EDGE / "test-8000Hz-le-2ch-1byteu.wav")
    d = built(WavDriver, {"path": str(p), "speed": "max", "batch_us": 7_000})
    assert d.sensor_shape() == (2,) and d.check([]) == []
    batches = asyncio.run(_collect(d))
    x = np.concatenate([b.events for b in batches])
    np.testing.assert_array_equal(x, read_wav(p)[1])
    assert all(b.kind == "samples" and b.meta["sample_rate_hz"] == 8000 for b in batches)
    assert [b.seq for b in batches] == list(range(len(batches)))
    assert batches[0].t_start_us == 0 and batches[-1].t_end_us == 100_000
    for a, b in zip(batches, batches[1:]):
        assert a.t_end_us == b.t_start_us
    assert len(batches[0]) == 56  # 7 ms at 8 kHz


def test_wav_driver_channel_selection_and_errors(tmp_path: Path) -> None:
    p = need(EDGE / "test-8000Hz-le-3ch-5S-24bit.wav")
    d = built(WavDriver, {"path": str(p), "speed": "max", "channels": [2, 0]})
    assert d.sensor_shape() == (2,)
    x = np.concatenate([b.events for b in asyncio.run(_collect(d))])
    full = read_wav(p)[1]
    np.testing.assert_array_equal(x, full[:, [2, 0]])
    bad = built(WavDriver, {"path": str(p), "channels": [3]})
    assert "out of range" in bad.check([])[0]
    # a missing file is not a validation problem (the path may come at run time), but
    # starting on it is an error that names the file
    missing = built(WavDriver, {"path": str(tmp_path / "none.wav"), "speed": "max"})
    assert missing.check([]) == [] and missing.sensor_shape() == ()
    with pytest.raises(FileNotFoundError, match=r"none\.wav not found.*drivers\.enc\.path"):
        asyncio.run(_collect(missing))
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\x04\x00\x00\x00WAVE")
    assert "fmt" in built(WavDriver, {"path": str(broken)}).check([])[0]  # present: checked


def test_bench_cases_run_once() -> None:
    need(FSDD)
    cases = bench_io_cases(DATA)
    assert {c["format"] for c in cases} == {"wav", "wav+cochlea"}
    for c in cases:
        assert c["unit"] in ("frames", "samples") and c["realtime_items_per_s"] == 8000.0
    assert cases[0]["run"]() == sum(
        WavReader(p).header.frames for p in sorted(FSDD.glob("*.wav"))[:60])
