"""Every network-facing default binds loopback: nothing listens on the network unless asked."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from edgesnn.components import KINDS, available
from edgesnn.config.schema import REQUIRED, Schema

#: parameter names that choose where something listens or binds
ADDRESS_KEYS = re.compile(r"^(host|bind|bind_host|listen|address|addr|endpoint|interface_ip)$")
OPEN = ("0.0.0.0", "::", "[::]", "*", "")


def _open_default(value: Any) -> bool:
    """Whether a default address or endpoint listens beyond loopback."""
    if not isinstance(value, str):
        return False
    v = value.strip()
    if v in OPEN:
        return v != ""  # an empty endpoint means "disabled" (checked by name below)
    m = re.match(r"^(tcp|udp|ws|http)://(\*|0\.0\.0\.0|\[::\]|::)(:|$)", v)
    return m is not None


def _schemas() -> list[tuple[str, Schema]]:
    from edgesnn.config.pipeline import HTTP_SCHEMA, REWARD_SCHEMA

    out = [("[http]", HTTP_SCHEMA), ("[reward]", REWARD_SCHEMA)]
    for kind in KINDS:
        for name, cls in available(kind).items():
            schema = getattr(cls, "schema", None)
            if isinstance(schema, Schema):
                out.append((f"{kind} {name}", schema))
    return out


def test_no_component_or_service_defaults_to_a_network_wide_address():
    checked = []
    for where, schema in _schemas():
        for key, f in schema.fields.items():
            if not ADDRESS_KEYS.match(key) or f.default is REQUIRED:
                continue
            checked.append(f"{where}.{key}={f.default!r}")
            assert not _open_default(f.default), f"{where}: {key} defaults to {f.default!r}"
            if key == "host":
                assert f.default in ("127.0.0.1", "::1", "localhost"), (where, f.default)
    # the audio, DVS and LiDAR UDP drivers, the ZeroMQ sink and the HTTP API are all covered
    joined = "\n".join(checked)
    for name in ("pcm_udp.host", "dvs_udp.host", "velodyne_udp.host", "zmq_pub.endpoint",
                 "[http].host"):
        assert name in joined, f"{name} not checked; checked: {joined}"


def test_pcm_udp_listens_on_loopback_by_default():
    import socket

    from edgesnn_drivers.audio.live import PcmUdpDriver

    from edgesnn.encoders.generic import built

    async def main() -> tuple[str, int]:
        d = built(PcmUdpDriver, {"port": 0, "sample_rate_hz": 8000}, id="mic")
        await d.start()
        try:
            for _ in range(200):
                if d._sock is not None:
                    break
                await asyncio.sleep(0.01)
            assert d._sock is not None, "the socket was never bound"
            host, port = d._sock.getsockname()[:2]
            # a datagram to loopback arrives; the socket is not reachable on other addresses
            tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            tx.sendto(b"\0\0" * 80, ("127.0.0.1", port))
            tx.close()
            for _ in range(200):
                if d.datagrams:
                    break
                await asyncio.sleep(0.01)
            assert d.datagrams == 1
            return host, port
        finally:
            await d.stop()

    host, _ = asyncio.run(main())
    assert host == "127.0.0.1"


@pytest.mark.parametrize("value,expected", [("0.0.0.0", True), ("tcp://*:5556", True),
                                            ("tcp://0.0.0.0:1", True), ("127.0.0.1", False),
                                            ("tcp://127.0.0.1:5556", False), ("", False)])
def test_the_open_address_check_itself(value, expected):
    assert _open_default(value) is expected
