"""A small fleet (tools/fleet.py): 3 `edgesnn run` daemons publishing through Mosquitto (QoS 1)
and through ZeroMQ joined by `edgesnn relay`; one monitor gets every detection of every daemon
on every path with gap-free seq, and the daemon killed with SIGKILL is announced offline by its
last will. `python3 tools/fleet.py` is the long version (20 daemons, 5 minutes, Zenoh too)."""

from __future__ import annotations

import json
import subprocess
import sys

from _mqtt_broker import need_mosquitto
from conftest import REPO, subprocess_env


def test_three_daemons_through_broker_and_relay_gap_free_and_the_killed_one_goes_offline():
    need_mosquitto()
    out = subprocess.run(
        [sys.executable, str(REPO / "tools" / "fleet.py"), "--daemons", "3", "--duration", "4",
         "--sample-s", "1", "--seed", "7", "--no-zenoh", "--settle-s", "1", "--json",
         "--quiet"],
        capture_output=True, text=True, env=subprocess_env(), timeout=300)
    assert out.returncode in (0, 1), out.stderr[-3000:]
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["paths"] == ["direct", "relay", "mqtt"]
    rows = {row["daemon"]: row for row in r["per_daemon"]}
    assert set(rows) == {"p00", "p01", "p02"}
    for name, row in rows.items():
        for path in r["paths"]:
            got = row[path]
            # every detection from seq 0 to the daemon's last one, once
            assert got["gaps"] == 0 and got["missed_at_start"] == 0, (name, path, got)
            assert got["duplicates"] == 0, (name, path, got)
            # the killed daemon's last ones may die in its MQTT outbox: not sent, not lost
            unsent = got.get("not_sent_before_kill", 0)
            assert got["received"] + unsent == row["last_seq"] + 1 > 10, (name, path, row)
    assert rows["p00"]["rc"] == rows["p01"]["rc"] == 0, r["per_daemon"]
    assert rows["p00"]["offline_stopped"] and rows["p01"]["offline_stopped"]
    assert r["killed"] == "p02" and rows["p02"]["rc"] == "killed"
    will = r["last_will"]
    assert will is not None and will["reason"] == "lost", r
    assert will["within_keepalive"], will
    assert r["bad_payloads"] == 0
    assert out.returncode == 0, r["problems"]
