"""MQTT sink over TLS with a user name and password from the environment, against a real
Mosquitto that requires both (certificates made by openssl, password file by
mosquitto_passwd)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path
from typing import Any

import msgpack
import pytest
from _mqtt_broker import Broker, Collector, need_mosquitto
from conftest import free_port
from test_mqtt_sink import det, make_sink, until


def run(*cmd: str, cwd: Path) -> None:
    subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture
def secure_broker(tmp_path: Path):
    need_mosquitto()
    for tool in ("openssl", "mosquitto_passwd"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not found (Debian: openssl, mosquitto)")
    d = tmp_path
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    run("openssl", "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=edgesnn test CA", cwd=d)
    run("openssl", "req", *ec, "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=127.0.0.1", cwd=d)
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    run("openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "san.ext", cwd=d)
    run("mosquitto_passwd", "-c", "-b", str(d / "passwd"), "cam", "s3cret pass", cwd=d)
    b = Broker(d, free_port(), extra=(
        f"cafile {d / 'ca.pem'}", f"certfile {d / 'server.pem'}",
        f"keyfile {d / 'server.key'}", "allow_anonymous false", f"password_file {d / 'passwd'}",
    ))
    b.start()
    yield b
    b.stop()


def test_tls_and_credentials_from_the_environment(secure_broker: Broker,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    d = secure_broker.folder
    monkeypatch.setenv("SITE_MQTT_USER", "cam")
    monkeypatch.setenv("SITE_MQTT_PASS", "s3cret pass")
    sub = Collector(secure_broker.port, ["edgesnn/#"], ca_file=str(d / "ca.pem"),
                    auth=("cam", "s3cret pass"))
    good = make_sink(secure_broker.port, tls=True, tls_ca_file=str(d / "ca.pem"),
                     username_env="SITE_MQTT_USER", password_env="SITE_MQTT_PASS")
    monkeypatch.setenv("SITE_MQTT_WRONG", "guess")
    wrong = make_sink(secure_broker.port, pipeline="p2", tls=True,
                      tls_ca_file=str(d / "ca.pem"), username_env="SITE_MQTT_USER",
                      password_env="SITE_MQTT_WRONG", reconnect_min_s=0.1)
    untrusted = make_sink(secure_broker.port, pipeline="p3", tls=True,  # system CAs only
                          username_env="SITE_MQTT_USER", password_env="SITE_MQTT_PASS",
                          reconnect_min_s=0.1)

    async def go() -> list[dict[str, Any]]:
        for s in (good, wrong, untrusted):
            await s.start()
        assert await until(lambda: good.connected)
        for i in range(5):
            for s in (good, wrong, untrusted):
                await s.send(det(i, pipeline=s.ctx.pipeline))
        assert await until(lambda: good.status()["delivered"] == 5)
        assert await until(lambda: wrong.status()["connect_failures"] >= 1
                           and untrusted.status()["connect_failures"] >= 1)
        out = [s.status() for s in (good, wrong, untrusted)]
        for s in (good, wrong, untrusted):
            s.params["drain_s"] = 0.0
            await s.stop()
        return out

    st_good, st_wrong, st_untrusted = asyncio.run(go())
    msgs = sub.wait_for(lambda s: sum("/det/" in t for t, _, _ in s) >= 5)
    sub.close()
    got = [(t, msgpack.unpackb(p)["seq"]) for t, p, _ in msgs if "/det/" in t]
    assert got == [("edgesnn/dev1/p1/det/left", i) for i in range(5)]  # nothing from p2, p3
    assert st_good["connected"] and st_good["outbox_dropped"] == 0
    assert not st_wrong["connected"] and st_wrong["delivered"] == 0
    assert "refused" in st_wrong["last_error"], st_wrong
    assert not st_untrusted["connected"] and st_untrusted["delivered"] == 0
    assert st_wrong["outbox_depth"] == st_untrusted["outbox_depth"] == 5
