"""NSL-KDD connection records (headerless CSV, optionally gzip) as a "records" source.

Each line has 41 features, the label and a difficulty level (43 columns; 42 without the
difficulty is accepted). The three symbolic features are stored as codes into fixed
vocabularies (`PROTOCOLS`, `SERVICES`, `FLAGS`; unknown names give 255), the label as a code
into `LABELS` (names first met that are not listed are appended per reader and reported).
Records get synthetic times `row * row_interval_us` so they can drive a pipeline. Gzip is
recognised by its magic number, not the file name.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from edgesnn.components import register
from edgesnn.config.schema import Field, Schema
from edgesnn.errors import FormatError
from edgesnn.events import EventBatch
from edgesnn.replay import REPLAY_SCHEMA, ReplayDriver

FEATURES = (
    "duration", "protocol_type", "service", "flag", "src_bytes", "dst_bytes", "land",
    "wrong_fragment", "urgent", "hot", "num_failed_logins", "logged_in", "num_compromised",
    "root_shell", "su_attempted", "num_root", "num_file_creations", "num_shells",
    "num_access_files", "num_outbound_cmds", "is_host_login", "is_guest_login", "count",
    "srv_count", "serror_rate", "srv_serror_rate", "rerror_rate", "srv_rerror_rate",
    "same_srv_rate", "diff_srv_rate", "srv_diff_host_rate", "dst_host_count",
    "dst_host_srv_count", "dst_host_same_srv_rate", "dst_host_diff_srv_rate",
    "dst_host_same_src_port_rate", "dst_host_srv_diff_host_rate", "dst_host_serror_rate",
    "dst_host_srv_serror_rate", "dst_host_rerror_rate", "dst_host_srv_rerror_rate",
)
SYMBOLIC = ("protocol_type", "service", "flag")
PROTOCOLS = ("tcp", "udp", "icmp")
FLAGS = ("OTH", "REJ", "RSTO", "RSTOS0", "RSTR", "S0", "S1", "S2", "S3", "SF", "SH")
SERVICES = (
    "IRC", "X11", "Z39_50", "aol", "auth", "bgp", "courier", "csnet_ns", "ctf", "daytime",
    "discard", "domain", "domain_u", "echo", "eco_i", "ecr_i", "efs", "exec", "finger", "ftp",
    "ftp_data", "gopher", "harvest", "hostnames", "http", "http_2784", "http_443", "http_8001",
    "imap4", "iso_tsap", "klogin", "kshell", "ldap", "link", "login", "mtp", "name",
    "netbios_dgm", "netbios_ns", "netbios_ssn", "netstat", "nnsp", "nntp", "ntp_u", "other",
    "pm_dump", "pop_2", "pop_3", "printer", "private", "red_i", "remote_job", "rje", "shell",
    "smtp", "sql_net", "ssh", "sunrpc", "supdup", "systat", "telnet", "tftp_u", "tim_i",
    "time", "urh_i", "urp_i", "uucp", "uucp_path", "vmnet", "whois",
)
#: Label vocabulary: normal first, then the attack names of the training and test sets.
LABELS = (
    "normal", "back", "buffer_overflow", "ftp_write", "guess_passwd", "imap", "ipsweep",
    "land", "loadmodule", "multihop", "neptune", "nmap", "perl", "phf", "pod", "portsweep",
    "rootkit", "satan", "smurf", "spy", "teardrop", "warezclient", "warezmaster", "apache2",
    "httptunnel", "mailbomb", "mscan", "named", "processtable", "ps", "saint", "sendmail",
    "snmpgetattack", "snmpguess", "sqlattack", "udpstorm", "worm", "xlock", "xsnoop", "xterm",
)
UNKNOWN_CODE = 255

NSLKDD_RECORD = np.dtype(
    [("t", "<i8")]
    + [(f, "u1") if f in SYMBOLIC else (f, "<f4") for f in FEATURES]
    + [("label", "u1"), ("attack", "u1"), ("difficulty", "i1")]
)


def _open_text(path: str | Path) -> TextIO:
    f = open(path, "rb")  # noqa: SIM115 (closed by the returned wrapper)
    head = f.read(2)
    f.seek(0)
    raw: Any = gzip.GzipFile(fileobj=f) if head == b"\x1f\x8b" else f
    return io.TextIOWrapper(raw, encoding="ascii", errors="replace", newline=None)


class NslKddReader:
    """Parses NSL-KDD lines into NSLKDD_RECORD chunks; FormatError names the line and offset."""

    def __init__(self, path: str | Path, row_interval_us: int = 1000, chunk_rows: int = 8192):
        self.path = str(path)
        self.row_interval_us = row_interval_us
        self.chunk_rows = chunk_rows
        self.labels = list(LABELS)
        self.rows = 0
        self._codes = [
            {n: i for i, n in enumerate(v)} for v in (PROTOCOLS, SERVICES, FLAGS)
        ]
        self._sym_idx = [FEATURES.index(s) for s in SYMBOLIC]

    def label_code(self, name: str) -> int:
        try:
            return self.labels.index(name)
        except ValueError:
            if len(self.labels) >= UNKNOWN_CODE:
                return UNKNOWN_CODE
            self.labels.append(name)
            return len(self.labels) - 1

    def chunks(self) -> Iterator[np.ndarray]:
        """NSLKDD_RECORD arrays of up to chunk_rows rows each."""
        rows: list[tuple[Any, ...]] = []
        offset = 0
        sym = set(self._sym_idx)
        with _open_text(self.path) as f:
            try:
                for lineno, line in enumerate(f, 1):
                    at = offset
                    offset += len(line)
                    s = line.strip()
                    if not s:
                        continue
                    cols = s.split(",")
                    if len(cols) not in (42, 43):
                        raise FormatError(f"line {lineno}: {len(cols)} columns, expected 43",
                                          offset=at, path=self.path)
                    vals: list[Any] = [self.rows * self.row_interval_us]
                    try:
                        for i in range(41):
                            if i in sym:
                                k = self._sym_idx.index(i)
                                vals.append(self._codes[k].get(cols[i], UNKNOWN_CODE))
                            else:
                                vals.append(float(cols[i]))
                        diff = int(cols[42]) if len(cols) == 43 else -1
                    except ValueError as e:
                        raise FormatError(f"line {lineno}: {e}", offset=at,
                                          path=self.path) from e
                    label = cols[41].strip().rstrip(".")
                    code = self.label_code(label)
                    vals += [code, 0 if label == "normal" else 1, max(-1, min(diff, 127))]
                    rows.append(tuple(vals))
                    self.rows += 1
                    if len(rows) >= self.chunk_rows:
                        yield np.array(rows, NSLKDD_RECORD)
                        rows = []
            except (EOFError, OSError, gzip.BadGzipFile) as e:
                raise FormatError(f"corrupt or truncated compressed data: {e}",
                                  offset=offset, path=self.path) from e
        if rows:
            yield np.array(rows, NSLKDD_RECORD)


def read_records(path: str | Path) -> tuple[np.ndarray, list[str]]:
    """All records of a file and the label vocabulary (codes index into it)."""
    r = NslKddReader(path)
    parts = list(r.chunks())
    return (np.concatenate(parts) if parts else np.zeros(0, NSLKDD_RECORD)), r.labels


@register
class NslKddDriver(ReplayDriver):
    """NSL-KDD connection records as "records" batches (one record per row_interval_us)."""

    type_name = "nsl_kdd"
    batch_kind = "records"
    summary = "NSL-KDD intrusion-detection records (CSV or gzip) as a record stream."
    schema = REPLAY_SCHEMA | Schema({
        "row_interval_us": Field(int, default=1000, min=1,
                                 doc="Synthetic time between consecutive records (µs)."),
    })

    def __init__(self, id: str, params: dict[str, Any], ctx: Any):
        super().__init__(id, params, ctx)
        self.rows = 0
        self.labels: list[str] = list(LABELS)

    def iter_batches(self) -> Iterator[EventBatch]:
        from edgesnn_drivers.network.windows import TimeWindows

        r = NslKddReader(self.resolve_path(), self.params["row_interval_us"])
        self.labels = r.labels
        win = TimeWindows(self.id, "records", NSLKDD_RECORD, self.params["batch_us"],
                          meta={"labels": r.labels, "dataset": "NSL-KDD"})
        for chunk in r.chunks():
            self.rows = r.rows
            yield from win.add(chunk)
        yield from win.flush()

    def status(self) -> dict[str, Any]:
        return {"rows": self.rows}


# --- edgesnn info -------------------------------------------------------------------------


def _text_head(path: str, head: bytes) -> str:
    if head[:2] == b"\x1f\x8b":
        try:
            with gzip.open(path, "rb") as g:
                head = g.read(4096)
        except (OSError, EOFError):
            return ""
    return head.decode("ascii", "replace")


def probe_file(path: str, head: bytes) -> str | None:
    """"nsl-kdd" when the first line has 42-43 columns with a protocol and a flag name."""
    text = _text_head(path, head)
    line = text.replace("\r", "\n").split("\n", 1)[0]
    cols = line.split(",")
    if len(cols) in (42, 43) and cols[1] in PROTOCOLS and cols[3] in FLAGS:
        return "nsl-kdd"
    return None


def info_file(path: str, fmt: str) -> dict[str, Any]:
    """Rows, normal and attack counts, and the count of every label."""
    r = NslKddReader(path)
    counts = np.zeros(256, np.int64)
    attack = 0
    for ch in r.chunks():
        counts += np.bincount(ch["label"], minlength=256)
        attack += int(ch["attack"].sum())
    labels = {r.labels[i] if i < len(r.labels) else f"#{i}": int(c)
              for i, c in enumerate(counts) if c}
    return {
        "format": fmt,
        "dataset": "NSL-KDD",
        "compressed": open(path, "rb").read(2) == b"\x1f\x8b",
        "rows": r.rows,
        "normal": r.rows - attack,
        "attack": attack,
        "distinct_labels": len(labels),
        "labels": dict(sorted(labels.items(), key=lambda kv: -kv[1])),
    }


def bench_io_cases(data_dir: Path) -> list[dict[str, Any]]:
    """NSL-KDD parsing (gzip CSV to records)."""
    p = Path(data_dir) / "network" / "nsl_kdd" / "KDDTrain+_20Percent.txt.gz"
    if not p.exists():
        return []

    def run(q: str = str(p)) -> int:
        return sum(len(c) for c in NslKddReader(q).chunks())

    return [{"format": "nsl-kdd", "file": str(p), "unit": "records", "run": run,
             "realtime_items_per_s": None}]
