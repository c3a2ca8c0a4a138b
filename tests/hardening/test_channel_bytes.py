"""Channels bounded by bytes from the pipeline TOML: `buffer_bytes` is validated with its TOML
path and line, and reaches the running channel, which holds no more than that."""

from __future__ import annotations

import asyncio

import pytest
from conftest import activity_pipeline, free_port

from edgesnn.config import pipeline as pl
from edgesnn.errors import ConfigError
from edgesnn.runtime.runner import Runtime


def _with_enc(extra_keys: str, duration_s: float = 0.0) -> str:
    text = activity_pipeline("bytes", free_port(), speed=1000.0, duration_s=duration_s)
    return text.replace('grid = [1, 1]\n', f'grid = [1, 1]\n{extra_keys}\n', 1)


@pytest.mark.parametrize("value, message", [
    ("100", "100 is below the minimum 4096"),
    ('"1M"', "expected integer, got str '1M'"),
    ("true", "expected integer, got bool True"),
    ("2_000_000_000_000", "is above the maximum"),
])
def test_bad_buffer_bytes_names_the_toml_path_and_line(tmp_path, value, message):
    text = _with_enc(f"buffer_bytes = {value}")
    path = tmp_path / "bytes.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as ei:
        pl.load(str(path))
    (p,) = [p for p in ei.value.problems if p.path == "encoders.enc.buffer_bytes"]
    assert message in p.message, p
    line = next(i for i, s in enumerate(text.splitlines(), 1) if s.startswith("buffer_bytes"))
    assert p.line == line and f"bytes.toml:{line}: encoders.enc.buffer_bytes" in str(p)


def test_buffer_bytes_bounds_the_running_channel(tmp_path):
    text = _with_enc('buffer = 1000\nbuffer_bytes = 8192\nwhen_full = "drop_oldest"', 0.5)
    cfg = pl.loads(text, str(tmp_path / "bytes.toml"))
    (enc,) = [c for c in cfg.components if c.id == "enc"]
    assert enc.buffer_bytes == 8192
    assert pl.loads(_with_enc(""), "d.toml").by_id()["enc"].buffer_bytes == 64 << 20  # default
    rt = Runtime(cfg)
    ch = rt.inbox["enc"]
    assert (ch.capacity, ch.max_bytes) == (1000, 8192)
    assert asyncio.run(rt.run(install_signals=False)) == 0
    row = rt.counters()["enc"]
    assert row["received"] > 10 and row["max_bytes"] == 8192
    # never more than the bound, unless a single batch is larger than it on its own
    assert row["high_water_bytes"] <= 8192 or ch.high_water == 1, row
