"""pipelines/intrusion_pcap.toml run by `edgesnn run` on the real captures: it flags the SYN scan,
the port scan and the SYN flood, and none of the normal captures.

Each capture is replayed at speed "max" through the shipped pipeline (the runtime, its ZeroMQ
sink on loopback and a JSON-lines file sink added with --set); the detections in the file are
checked against what the capture holds, computed here from the decoded packets.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
PCAP = REPO.parent / "shared" / "data" / "network" / "pcap"
PIPELINE = REPO / "pipelines" / "intrusion_pcap.toml"
ATTACKS = ["attack_synscan.pcap", "attack_portscan.pcap", "attack_dosattack.pcap"]
NORMAL = ["normal_http_google.pcap", "normal_tcp_handshake.pcap",
          "normal_dns_query_response.pcap", "normal_icmp_echo.pcap"]


def _capture(name: str) -> Path:
    p = PCAP / name
    if not p.is_file():
        pytest.skip(f"real capture {p} not present (../shared/data beside the repo)")
    return p


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _detections(path: Path, tmp_path: Path) -> list[dict]:
    out = tmp_path / "det.jsonl"
    sets = {
        "drivers.capture.path": json.dumps(str(path)),
        "drivers.capture.speed": '"max"',
        "sinks.zmq.endpoint": json.dumps(f"tcp://127.0.0.1:{_free_port()}"),
        "sinks.jsonl.type": '"file"',
        "sinks.jsonl.inputs": '["pattern"]',
        "sinks.jsonl.path": json.dumps(str(out)),
    }
    args = [sys.executable, "-m", "edgesnn", "run", str(PIPELINE)]
    for k, v in sets.items():
        args += ["--set", f"{k}={v}"]
    r = subprocess.run(args, capture_output=True, text=True, timeout=240, cwd=REPO)
    assert r.returncode == 0, r.stderr[-3000:]
    dets = [json.loads(x) for x in out.read_text().splitlines()] if out.exists() else []
    assert all(d["kind"] == "det" and d["pipeline"] == "intrusion_pcap" for d in dets)
    return dets


def _bare_syn_share(path: Path) -> float:
    """Bare SYNs (SYN without ACK) among the TCP packets of the whole capture."""
    from edgesnn_drivers.network import pcap
    from edgesnn_drivers.network.decode import TCP, syn_counts

    pk = pcap.read_packets(path)
    n_tcp = int(np.count_nonzero((pk["ip_version"] > 0) & (pk["proto"] == TCP)))
    return syn_counts(pk)[0] / n_tcp if n_tcp else 0.0


@pytest.mark.parametrize("name", ATTACKS)
def test_flags_syn_scans_and_floods(name: str, tmp_path: Path) -> None:
    path = _capture(name)
    assert _bare_syn_share(path) > 0.5  # connection attempts that never complete
    dets = _detections(path, tmp_path)
    heavy = [d for d in dets if d["label"] == "syn_heavy"]
    assert heavy, f"{name}: no syn_heavy detection among {[d['label'] for d in dets]}"
    for d in heavy:  # the SYN neuron won its readout window by at least min_spikes
        counts = d["extra"]["counts"]
        assert counts[0] == max(counts) >= 3


@pytest.mark.parametrize("name", NORMAL)
def test_normal_captures_raise_no_alarm(name: str, tmp_path: Path) -> None:
    path = _capture(name)
    assert _bare_syn_share(path) < 0.5  # handshakes complete (or no TCP at all)
    dets = _detections(path, tmp_path)
    assert dets, f"{name}: the pipeline reported nothing at all"
    assert {d["label"] for d in dets} == {"low_syn"}
