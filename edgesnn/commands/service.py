"""`edgesnn service install PIPELINE|DIR`: a systemd unit that runs a pipeline (or a folder of
them, `edgesnn run DIR`) as a service.

The unit uses `Type=notify`: the daemon itself tells systemd when it is ready (after the
kernels are loaded or compiled), pings the watchdog while healthy, and reports reloads
(SIGHUP, `systemctl reload`) and drains (edgesnn.runtime.notify). It runs as a transient
system user (`DynamicUser=yes`) or a named one, with a state folder and a cache folder
where numba keeps the compiled kernels (`NUMBA_CACHE_DIR=%C/edgesnn/numba`), and restarts on
failure. By default the unit is printed, so nothing needs root to look at it.
`tools/edgesnn@.service` in the repository is the same unit as a template (`%i` = pipeline).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

#: systemd's WatchdogSec: the daemon pings at half of it
WATCHDOG_SEC = 30
#: a cold compile on a small ARM board takes minutes; the daemon extends this while compiling
START_TIMEOUT = "15min"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "service",
        help="write a systemd unit that runs a pipeline as a service",
        description="Run a pipeline under systemd: `edgesnn service install PIPELINE` prints "
        "(or with --output writes) a unit with Type=notify (ready after warm-up, watchdog, "
        "reload on SIGHUP, drain on stop), a dynamic or named user, state and cache folders "
        "(numba's kernel cache) and Restart=on-failure.",
    )
    ssub = p.add_subparsers(dest="action", metavar="ACTION")
    inst = ssub.add_parser(
        "install",
        help="print or write the unit for PIPELINE",
        description="Print the systemd unit for PIPELINE (a TOML file or a shipped name), or "
        "write it with --output. Then: systemctl daemon-reload; systemctl enable --now NAME. "
        "Run `edgesnn warmup PIPELINE` once beforehand (as the service's user, with the same "
        "NUMBA_CACHE_DIR) to make the first start fast.",
    )
    inst.add_argument("pipeline", help="pipeline TOML file, shipped pipeline name, or a folder "
                      "of pipeline files (the unit runs `edgesnn run DIR`: every *.toml in it, "
                      "checked as a set first)")
    who = inst.add_mutually_exclusive_group()
    who.add_argument("--user", metavar="NAME", help="run as this existing user (User=NAME)")
    who.add_argument("--dynamic-user", action="store_true",
                     help="run as a transient system user (DynamicUser=yes; the default)")
    inst.add_argument("--output", "-o", metavar="FILE",
                      help="write the unit here (e.g. /etc/systemd/system/edgesnn-demo.service) "
                      "instead of printing it")
    inst.add_argument("--watchdog-sec", type=int, default=WATCHDOG_SEC, metavar="S",
                      help=f"WatchdogSec (default {WATCHDOG_SEC}; 0 disables the watchdog)")
    inst.add_argument("--set", action="append", default=[], metavar="PATH=VALUE",
                      help="override passed to `edgesnn run` (as for run); repeatable")
    inst.set_defaults(func=install)
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])


def _quote(arg: str, template: bool = False) -> str:
    """One ExecStart word: '%' and '$' escaped (except %i in a template), quoted if needed."""
    s = arg.replace("%", "%%").replace("$", "$$")
    if template:
        s = s.replace("%%i", "%i")
    if any(c.isspace() for c in s) or '"' in s or "\\" in s or "'" in s or not s:
        s = '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return s


def edgesnn_executable() -> list[str]:
    """How to start this edgesnn: the `edgesnn` script beside this Python, else `python -m`."""
    exe = Path(sys.executable)
    script = exe.parent / "edgesnn"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    found = shutil.which("edgesnn")
    if found:
        return [os.path.abspath(found)]
    return [str(exe), "-m", "edgesnn"]


def unit_text(pipeline: str, exec_start: list[str], *, user: str | None = None,
              watchdog_sec: int = WATCHDOG_SEC, overrides: list[str] | None = None,
              template: bool = False, description: str = "") -> str:
    """The unit file for `pipeline` started by `exec_start` (the edgesnn command words)."""
    run = [*exec_start, "run", pipeline]
    for o in overrides or []:
        run += ["--set", o]
    q = [_quote(a, template) for a in run]
    name = "%i" if template else pipeline
    who = f"User={user}" if user else "DynamicUser=yes"
    wd = f"WatchdogSec={watchdog_sec}" if watchdog_sec > 0 else "# WatchdogSec= (disabled)"
    title = description or f"edgesnn pipeline {name}"
    if template:
        head = (f"# {title} -- template unit: %i is a shipped pipeline name (demo,\n"
                "# dvs_motion, ...). For your own TOML file, `edgesnn service install FILE`\n"
                "# writes the same unit with the file's path and this machine's edgesnn path.\n"
                "# Generated from edgesnn.commands.service.template_text().\n"
                "#   install: copy to /etc/systemd/system/edgesnn@.service (fix ExecStart's path:\n"
                "#            `command -v edgesnn`), then\n"
                "#            systemctl daemon-reload && systemctl enable --now edgesnn@demo\n")
    else:
        head = (f"# {title} -- written by `edgesnn service install`.\n"
                "#   install: save as /etc/systemd/system/<name>.service, then\n"
                "#            systemctl daemon-reload && systemctl enable --now <name>\n")
    return head + f"""\
#   reload:  systemctl reload <name>   (SIGHUP: validates the file, then reloads it)
#   logs:    journalctl -u <name> -f   (timestamped; `edgesnn --log-format json` for JSON)
# The daemon notifies systemd itself (Type=notify): READY after its kernels are loaded or
# compiled, WATCHDOG pings at half of WatchdogSec while healthy, STATUS lines (compiling /
# running N detections / draining). The first start compiles kernels into the cache folder
# (minutes on a small ARM board): `edgesnn warmup PIPELINE` as the same user does it ahead.
# Files the pipeline writes (checkpoints) belong in the state folder, /var/lib/edgesnn.

[Unit]
Description={title}
Wants=network-online.target
After=network-online.target

[Service]
Type=notify
NotifyAccess=main
ExecStart={" ".join(q)}
ExecReload=/bin/kill -HUP $MAINPID
KillSignal=SIGTERM
TimeoutStartSec={START_TIMEOUT}
TimeoutStopSec=30
{wd}
Restart=on-failure
RestartSec=2
{who}
StateDirectory=edgesnn
CacheDirectory=edgesnn
WorkingDirectory=%S/edgesnn
Environment=NUMBA_CACHE_DIR=%C/edgesnn/numba
Environment=PYTHONUNBUFFERED=1
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=read-only
PrivateTmp=yes

[Install]
WantedBy=multi-user.target
"""


def _check_folder(folder: Path, overrides: list[str]) -> int:
    """Validate a folder's pipelines as the set `edgesnn run DIR` runs; 0, or 2 after printing
    every problem."""
    from edgesnn.commands.run import print_problems
    from edgesnn.errors import ConfigError
    from edgesnn.runtime import pipeset

    loaded = [pipeset.load(p, overrides) for p in pipeset.listing([], [folder])]
    if not loaded:
        print(f"{folder}: no pipeline files (*.toml)", file=sys.stderr)
        return 2
    code = 0
    for item in loaded:
        if item.error is not None:
            code = print_problems(str(item.path), item.error)
    problems = pipeset.check_set([item.cfg for item in loaded if item.cfg is not None])
    if problems:
        code = print_problems(f"{folder} (pipelines of one daemon)", ConfigError(problems))
    return code


def install(args: argparse.Namespace) -> int:
    from edgesnn.commands.run import load_with_overrides, print_problems
    from edgesnn.config.pipeline import resolve
    from edgesnn.errors import ConfigError

    if Path(args.pipeline).is_dir():  # `edgesnn run DIR`: every *.toml, again on each reload
        folder = Path(args.pipeline).resolve()
        code = _check_folder(folder, args.set)  # never install a broken set
        if code:
            return code
        target, description = str(folder), f"edgesnn pipelines in {folder}"
    else:
        try:
            cfg = load_with_overrides(args.pipeline, args.set)  # never install a broken one
            path = resolve(args.pipeline)
        except ConfigError as e:
            return print_problems(args.pipeline, e)
        # a file is named by its absolute path (the service runs elsewhere); shipped names stay
        target = args.pipeline if not Path(args.pipeline).is_file() else str(path.resolve())
        description = f"edgesnn pipeline {cfg.name}"
    text = unit_text(target, edgesnn_executable(), user=args.user,
                     watchdog_sec=args.watchdog_sec, overrides=args.set,
                     description=description)
    if not args.output:
        sys.stdout.write(text)
        return 0
    out = Path(args.output)
    try:
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, out)
    except OSError as e:
        print(f"service: cannot write {out}: {e}", file=sys.stderr)
        return 1
    unit = out.name if out.suffix == ".service" else "<name>.service"
    print(f"service: wrote {out}; now: systemctl daemon-reload && systemctl enable --now "
          f"{unit}", file=sys.stderr)
    return 0


def template_text() -> str:
    """The template unit shipped as tools/edgesnn@.service (`systemctl start edgesnn@demo`)."""
    return unit_text("%i", ["/usr/local/bin/edgesnn"], template=True,
                     description="edgesnn pipeline %i")
