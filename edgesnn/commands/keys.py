"""`edgesnn keys generate DIR [--name N]`: CURVE key pairs for ZeroMQ across hosts."""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "keys",
        help="generate CURVE key pairs (encrypted, authenticated ZeroMQ)",
        description="CURVE keys for zmq_pub sinks, the reward socket and `edgesnn relay`. "
        "`generate DIR --name N` writes DIR/N.key (public: copy it to the other side) and "
        "DIR/N.key_secret (secret: mode 0600, stays on this host). A daemon's sink points "
        "curve_secret_key at its .key_secret and curve_allowed_keys at a folder holding the "
        "subscribers' .key files; a subscriber gives its own .key_secret and the daemon's .key.",
    )
    keys = p.add_subparsers(dest="keys_command", metavar="ACTION")
    g = keys.add_parser("generate", help="write a new key pair N.key and N.key_secret into DIR")
    g.add_argument("dir", help="folder for the key files (created, mode 0700, when missing)")
    g.add_argument("--name", default="edgesnn",
                   help="file name stem (default edgesnn): e.g. the host or monitor name")
    g.add_argument("--force", action="store_true", help="replace an existing key pair")
    g.set_defaults(func=generate)
    s = keys.add_parser("show", help="print the public key (Z85) of a key file")
    s.add_argument("file", help="a .key or .key_secret file")
    s.set_defaults(func=show)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def generate(args: argparse.Namespace) -> int:
    import zmq.auth

    if not _NAME.match(args.name):
        print(f"keys: --name {args.name!r}: use letters, digits, '.', '_' or '-' "
              "(at most 64 characters)", file=sys.stderr)
        return 2
    d = Path(args.dir)
    public, secret = d / f"{args.name}.key", d / f"{args.name}.key_secret"
    if not args.force and (public.exists() or secret.exists()):
        print(f"keys: {secret if secret.exists() else public} exists; give --force to replace "
              "it (clients holding the old public key will be refused)", file=sys.stderr)
        return 1
    old = os.umask(0o077)  # the secret file is never readable by others, not even briefly
    try:
        d.mkdir(parents=True, exist_ok=True)
        zmq.auth.create_certificates(d, args.name)
    except OSError as e:
        print(f"keys: cannot write {d}: {e}", file=sys.stderr)
        return 1
    finally:
        os.umask(old)
    os.chmod(secret, 0o600)
    os.chmod(public, 0o644)
    key = zmq.auth.load_certificate(public)[0].decode()
    print(f"public key file  {public}  (give it to the other side)")
    print(f"secret key file  {secret}  (mode 0600; keep it on this host)")
    print(f"public key       {key}")
    return 0


def show(args: argparse.Namespace) -> int:
    from edgesnn.curve import KeyFileError, load_public

    try:
        print(load_public(args.file).decode())
    except KeyFileError as e:
        print(f"keys: {e}", file=sys.stderr)
        return 1
    return 0
