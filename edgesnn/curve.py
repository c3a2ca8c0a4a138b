"""ZeroMQ CURVE security for the detection publisher, the reward socket and the relay.

A bound socket (the server) holds a secret key file written by `edgesnn keys generate` and
accepts only clients whose public key file (``NAME.key``) is in an allowed-keys folder; the
folder is re-read when it changes, so adding or removing a file takes effect for the next
connection without a restart. Every message is encrypted. A client (`edgesnn subscribe`,
`edgesnn reward`, `edgesnn relay`, `edgesnn.client.Subscriber`) needs its own secret key file
and the server's public key (its ``.key`` file or the 40-character Z85 text).

Without CURVE, a socket bound to anything but loopback is readable (and, for rewards,
writable) by anyone who reaches the port: `warn_if_exposed` logs that.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

log = logging.getLogger("edgesnn.curve")

_Z85_KEY = re.compile(r"^[0-9a-zA-Z.\-:+=^!/*?&<>()\[\]{}@%$#]{40}$")


class KeyFileError(ValueError):
    """A key file or folder that cannot be used (message names the path)."""


def _resolve(path: str, base_dir: str | os.PathLike[str] | None) -> Path:
    p = Path(path).expanduser()
    if not p.is_absolute() and base_dir is not None:
        p = Path(base_dir) / p
    return p


def _require_curve() -> None:
    if not zmq.has("curve"):
        raise KeyFileError(f"this libzmq {zmq.zmq_version()} was built without CURVE support; "
                           "install pyzmq's own wheel (pip install --force-reinstall pyzmq)")


def load_secret(path: str | os.PathLike[str], base_dir: Any = None) -> tuple[bytes, bytes]:
    """(public, secret) Z85 keys from a ``.key_secret`` file; KeyFileError naming the file."""
    _require_curve()
    p = _resolve(str(path), base_dir)
    try:
        public, secret = zmq.auth.load_certificate(p)
    except (OSError, ValueError) as e:
        raise KeyFileError(f"{p}: not a readable CURVE key file ({e})") from None
    if secret is None:
        raise KeyFileError(f"{p}: holds only a public key; give the .key_secret file "
                        "(edgesnn keys generate writes both)")
    return public, secret


def load_public(text_or_path: str, base_dir: Any = None) -> bytes:
    """A public key: 40 characters of Z85 text, or a key file (``.key`` or ``.key_secret``)."""
    if _Z85_KEY.match(text_or_path) and not _resolve(text_or_path, base_dir).exists():
        return text_or_path.encode()
    p = _resolve(text_or_path, base_dir)
    try:
        public, _ = zmq.auth.load_certificate(p)
    except (OSError, ValueError) as e:
        raise KeyFileError(f"{p}: not a CURVE public key file nor a 40-character Z85 key "
                        f"({e})") from None
    return public


def check_secret_file(path: str, base_dir: Any = None) -> str | None:
    """What is wrong with a server/client secret key file, or None."""
    try:
        load_secret(path, base_dir)
    except KeyFileError as e:
        return str(e)
    return None


def check_allowed_dir(path: str, base_dir: Any = None) -> str | None:
    """What is wrong with an allowed-keys folder, or None (an empty folder admits nobody)."""
    p = _resolve(path, base_dir)
    if not p.is_dir():
        return f"{p}: allowed-keys folder not found (put the clients' NAME.key files there)"
    return None


class AllowedKeys:
    """ZAP credentials provider: client public keys from the ``*.key`` files of a folder,
    re-read when the folder changes; counts and logs refused clients."""

    def __init__(self, folder: str | os.PathLike[str]):
        self.folder = Path(folder)
        self._keys: frozenset[bytes] = frozenset()
        self._stamp: tuple[int, ...] | None = None
        self._lock = threading.Lock()
        self.allowed = 0
        self.denied = 0
        self._last_log = 0.0
        self.reload()

    def _current_stamp(self) -> tuple[int, ...]:
        try:
            st = self.folder.stat()
            files = sorted(self.folder.glob("*.key"))
            return (st.st_mtime_ns, len(files), *(f.stat().st_mtime_ns for f in files))
        except OSError:
            return (-1,)

    def reload(self) -> None:
        """Read the folder's public keys now (unreadable files are skipped with a warning)."""
        stamp = self._current_stamp()
        keys = set()
        for f in sorted(self.folder.glob("*.key")) if self.folder.is_dir() else []:
            try:
                keys.add(zmq.auth.load_certificate(f)[0])
            except (OSError, ValueError) as e:
                log.warning("allowed key %s skipped: %s", f, e)
        with self._lock:
            self._keys, self._stamp = frozenset(keys), stamp

    @property
    def keys(self) -> frozenset[bytes]:
        if self._current_stamp() != self._stamp:
            self.reload()
        return self._keys

    def callback(self, domain: str, key: bytes) -> bool:
        """Called by the ZAP authenticator for each connecting client (Z85 key)."""
        ok = key in self.keys
        if ok:
            self.allowed += 1
        else:
            self.denied += 1
            now = time.monotonic()
            if now - self._last_log > 10.0:
                self._last_log = now
                log.warning("CURVE client refused: key %s is not in %s (%d refused so far)",
                            key.decode(errors="replace"), self.folder, self.denied)
        return ok


class _AnyKey:
    """Credentials provider admitting every client (encryption without authentication)."""

    allowed = 0
    denied = 0

    def callback(self, domain: str, key: bytes) -> bool:
        self.allowed += 1
        return True


@dataclass
class CurveServer:
    """Server-side CURVE: this socket's key pair and who may connect."""

    public: bytes
    secret: bytes
    allowed_dir: Path | None  # None: any client that knows the server's public key

    @classmethod
    def load(cls, secret_file: str, allowed_dir: str = "", base_dir: Any = None) -> CurveServer:
        """From a ``.key_secret`` file and an allowed-keys folder ('' allows any client)."""
        public, secret = load_secret(secret_file, base_dir)
        folder = None
        if allowed_dir:
            problem = check_allowed_dir(allowed_dir, base_dir)
            if problem:
                raise KeyFileError(problem)
            folder = _resolve(allowed_dir, base_dir)
        return cls(public, secret, folder)

    def start(self, ctx: zmq.Context[Any], sock: zmq.Socket[Any]) -> ServerAuth:
        """Start the context's ZAP authenticator and make `sock` a CURVE server (before bind)."""
        auth = ServerAuth(ctx, self.allowed_dir)
        sock.setsockopt(zmq.CURVE_SERVER, 1)
        sock.setsockopt(zmq.CURVE_PUBLICKEY, self.public)
        sock.setsockopt(zmq.CURVE_SECRETKEY, self.secret)
        sock.setsockopt(zmq.ZAP_DOMAIN, b"edgesnn")
        if self.allowed_dir is None:
            log.warning("CURVE without an allowed-keys folder: traffic is encrypted, but any "
                        "client that knows the server's public key may connect")
        return auth


class ServerAuth:
    """The ZAP authenticator thread of one context (one per bound CURVE socket's context)."""

    def __init__(self, ctx: zmq.Context[Any], allowed_dir: Path | None):
        # the authenticator thread needs a plain (blocking) context: shadow an asyncio one
        base = ctx if type(ctx) is zmq.Context else zmq.Context.shadow(ctx.underlying)
        self.provider: AllowedKeys | _AnyKey = (AllowedKeys(allowed_dir) if allowed_dir
                                                else _AnyKey())
        self._auth = ThreadAuthenticator(base, log=logging.getLogger("edgesnn.curve.zap"))
        self._auth.start()
        self._auth.configure_curve_callback("*", credentials_provider=self.provider)
        self._auth.configure_curve_callback("edgesnn", credentials_provider=self.provider)

    def stop(self) -> None:
        self._auth.stop()

    def status(self) -> dict[str, Any]:
        p = self.provider
        out: dict[str, Any] = {"curve": True, "clients_allowed": p.allowed,
                               "clients_refused": p.denied}
        if isinstance(p, AllowedKeys):
            out["allowed_keys"] = len(p.keys)
        return out


@dataclass(frozen=True)
class CurveClient:
    """Client-side CURVE: the client's key pair and the server's public key."""

    public: bytes
    secret: bytes
    server: bytes

    @classmethod
    def load(cls, secret_file: str, server_key: str, base_dir: Any = None) -> CurveClient:
        """From the client's ``.key_secret`` file and the server's public key (file or Z85)."""
        public, secret = load_secret(secret_file, base_dir)
        return cls(public, secret, load_public(server_key, base_dir))

    def apply(self, sock: zmq.Socket[Any]) -> None:
        """Make `sock` a CURVE client of the server (call before connect)."""
        sock.setsockopt(zmq.CURVE_PUBLICKEY, self.public)
        sock.setsockopt(zmq.CURVE_SECRETKEY, self.secret)
        sock.setsockopt(zmq.CURVE_SERVERKEY, self.server)


def is_loopback(endpoint: str) -> bool:
    """True for tcp:// on 127.0.0.0/8, ::1 or localhost, and for ipc:// and inproc://."""
    scheme, _, rest = endpoint.partition("://")
    if scheme != "tcp":
        return scheme in ("ipc", "inproc")
    host = rest.rsplit(":", 1)[0]
    if ";" in host:  # tcp://SOURCE;HOST:PORT binds HOST
        host = host.split(";", 1)[1]
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # '*', an interface name or a host name: reachable from outside
        return False


def warn_if_exposed(endpoint: str, what: str, curve: bool, setting: str) -> bool:
    """Log a warning when `endpoint` is reachable from other hosts without CURVE; True then."""
    if curve or is_loopback(endpoint):
        return False
    log.warning("%s binds %s without CURVE: anyone who reaches this address can %s; set %s "
                "(keys from `edgesnn keys generate`)", what, endpoint,
                "send to it" if "reward" in what else "read it", setting)
    return True
