"""`edgesnn relay`: several publishers -> one XSUB/XPUB proxy -> one monitor, gap-free by seq
per source; with CURVE on both sides only allowed keys get through."""

from __future__ import annotations

import argparse
import contextlib
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
import zmq
import zmq.auth
from conftest import activity_pipeline, edgesnn_cmd, free_port, subprocess_env

from edgesnn import wire
from edgesnn.client import Subscriber
from edgesnn.commands import relay as relay_cmd
from edgesnn.curve import CurveClient, CurveServer
from edgesnn.relay import Relay


def _per_pipeline(msgs: list[dict]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for m in msgs:
        out.setdefault(m["pipeline"], []).append(m["seq"])
    return out


@pytest.mark.parametrize("curve", [False, True], ids=["plain", "curve"])
def test_relay_joins_two_daemons_for_one_monitor(tmp_path, curve):
    """Two daemons -> `edgesnn relay` -> one monitor; with CURVE, each daemon has its own key
    and admits the relay's, and the relay admits the monitor's (all from the command line)."""
    k = tmp_path / "keys"
    k.mkdir()
    for name in ("north", "south", "relay", "monitor"):
        zmq.auth.create_certificates(k, name)
    for folder, name in (("daemons_allow", "relay"), ("relay_allows", "monitor")):
        (tmp_path / folder).mkdir()
        shutil.copy(k / f"{name}.key", tmp_path / folder)
    ports = [free_port(), free_port()]
    daemons = []
    for name, port in zip(("north", "south"), ports):
        path = tmp_path / f"{name}.toml"
        extra = (f'curve_secret_key = "keys/{name}.key_secret"\n'
                 'curve_allowed_keys = "daemons_allow"\n') if curve else ""
        path.write_text(activity_pipeline(name, port, window_ms=50.0, extra=extra))
        daemons.append(subprocess.Popen(edgesnn_cmd("run", str(path)), stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True, env=subprocess_env()))
    relay_ep = f"tcp://127.0.0.1:{free_port()}"
    keys_args = ["--curve-key", str(k / "relay.key_secret"),
                 "--server-key", str(k / "north.key"), "--server-key", str(k / "south.key"),
                 "--pub-secret-key", str(k / "relay.key_secret"),
                 "--pub-allowed-keys", str(tmp_path / "relay_allows")] if curve else []
    relay = subprocess.Popen(
        edgesnn_cmd("relay", "--sub", f"tcp://127.0.0.1:{ports[0]}", "--sub",
                    f"tcp://127.0.0.1:{ports[1]}", "--pub", relay_ep, "--stats-s", "0",
                    *keys_args),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=subprocess_env())
    mine = CurveClient.load(str(k / "monitor.key_secret"), str(k / "relay.key")) if curve \
        else None
    msgs: list[dict] = []
    try:
        with Subscriber(relay_ep, timeout_ms=200, curve=mine) as sub:
            deadline = time.monotonic() + 90
            while min(len(v) for v in _per_pipeline(msgs).values() or [[]]) < 10 \
                    or len(_per_pipeline(msgs)) < 2:
                assert time.monotonic() < deadline, _per_pipeline(msgs)
                assert relay.poll() is None and all(d.poll() is None for d in daemons)
                with contextlib.suppress(TimeoutError):
                    msgs.append(sub.recv())
            gaps = sub.gaps
    finally:
        relay.send_signal(signal.SIGTERM)
        _, relay_err = relay.communicate(timeout=30)
        for d in daemons:
            d.send_signal(signal.SIGTERM)
        for d in daemons:
            d.communicate(timeout=30)
    seqs = _per_pipeline(msgs)
    assert set(seqs) == {"north", "south"} and gaps == 0
    for s in seqs.values():  # every detection of each daemon once it was joined, in order
        assert s == list(range(s[0], s[0] + len(s)))
    assert all(m["topic"] == f"det.{m['pipeline']}.activity" for m in msgs)
    assert relay.returncode == 0, relay_err
    assert "relaying 2 publisher(s)" in relay_err and "relay stopped after" in relay_err
    assert ("with CURVE" in relay_err) == curve


def test_relay_with_curve_on_both_sides(tmp_path):
    keys = tmp_path / "keys"
    keys.mkdir()
    for name in ("pub0", "pub1", "pub2", "relay", "monitor", "intruder"):
        zmq.auth.create_certificates(keys, name)
    relay_allowed, monitors_allowed = tmp_path / "relay_allowed", tmp_path / "monitors"
    relay_allowed.mkdir()
    monitors_allowed.mkdir()
    shutil.copy(keys / "relay.key", relay_allowed)
    shutil.copy(keys / "monitor.key", monitors_allowed)

    ctx = zmq.Context()
    n, sources = 300, 3
    pubs, auths, eps, ctxs = [], [], [], []
    for i in range(sources):  # CURVE publishers that admit only the relay's key
        ctxs.append(zmq.Context())  # one ZAP handler per context: one context per publisher
        s = ctxs[-1].socket(zmq.XPUB)  # XPUB: it sees when the monitor's subscription arrives
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.SNDHWM, 10 * n)
        auths.append(CurveServer.load(str(keys / f"pub{i}.key_secret"),
                                      str(relay_allowed)).start(ctxs[-1], s))
        s.bind("tcp://127.0.0.1:0")
        pubs.append(s)
        eps.append(s.getsockopt_string(zmq.LAST_ENDPOINT))

    def publish(i: int) -> None:
        assert pubs[i].poll(30_000), "no subscription reached the publisher"
        assert pubs[i].recv().startswith(b"\x01")
        for seq in range(n):
            pubs[i].send_multipart(wire.frames({"v": 1, "kind": "det", "pipeline": f"p{i}",
                                                "seq": seq, "label": "x", "score": 1.0}))

    clients = [CurveClient.load(str(keys / "relay.key_secret"), str(keys / f"pub{i}.key"))
               for i in range(sources)]
    server = CurveServer.load(str(keys / "relay.key_secret"), str(monitors_allowed))
    relay = Relay(eps, "tcp://127.0.0.1:0", clients, server)
    relay.start()
    threads = [threading.Thread(target=publish, args=(i,)) for i in range(sources)]
    try:
        for t in threads:
            t.start()
        mine = CurveClient.load(str(keys / "monitor.key_secret"), str(keys / "relay.key"))
        theirs = CurveClient.load(str(keys / "intruder.key_secret"), str(keys / "relay.key"))
        intruder = Subscriber(relay.bound, timeout_ms=100, context=ctx, curve=theirs)
        with Subscriber(relay.bound, timeout_ms=10_000, context=ctx, curve=mine) as sub:
            msgs = [sub.recv() for _ in range(n * sources)]
            assert sub.gaps == 0
        for t in threads:
            t.join(30)
        leaked = []
        with contextlib.suppress(TimeoutError):
            leaked.append(intruder.recv())
        intruder.close()
        st = relay.status()
    finally:
        relay.stop()
        for s, a, c in zip(pubs, auths, ctxs):
            s.close(0)
            a.stop()
            c.term()
        ctx.term()
    assert _per_pipeline(msgs) == {f"p{i}": list(range(n)) for i in range(sources)}
    assert leaked == []
    assert st["front_msgs_in"] >= n * sources and st["clients_refused"] >= 1
    assert st["clients_allowed"] >= 1


def _args(**kw) -> argparse.Namespace:
    base = dict(sub=["tcp://127.0.0.1:5556"], pub="tcp://127.0.0.1:5560", curve_key=None,
                server_key=None, pub_secret_key=None, pub_allowed_keys=None, hwm=100_000,
                stats_s=0.0)
    return argparse.Namespace(**{**base, **kw})


def test_relay_cli_refuses_bad_options(capsys, tmp_path: Path):
    for kw, words in [
        ({"sub": ["tcp://*:5556"]}, "'*' only binds"),
        ({"pub": "127.0.0.1:5560"}, "did you mean tcp://127.0.0.1:5560?"),
        ({"curve_key": "x.key_secret"}, "go together"),
        ({"sub": ["tcp://a:1", "tcp://b:1", "tcp://c:1"], "curve_key": "k",
          "server_key": ["s1", "s2"]}, "once per --sub (3)"),
        ({"pub_allowed_keys": str(tmp_path)}, "needs --pub-secret-key"),
        ({"pub_secret_key": str(tmp_path / "none.key_secret")}, "not a readable CURVE key"),
    ]:
        assert relay_cmd.run(_args(**kw)) == 2
        err = capsys.readouterr().err
        assert err.startswith("relay: ") and words in err, err
