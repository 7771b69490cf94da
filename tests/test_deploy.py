"""tools/deploy.py: the plan (which files, compiled for which architecture,
what is skipped as unchanged), its errors, and a real deploy with the real
mpremote into a stand-in board: the MicroPython Unix port's REPL on a pty,
whose filesystem is a temp directory and whose reset restarts it through
boot.py and main.py, as a board's firmware does."""

import fcntl
import json
import os
import pty
import select
import shutil
import subprocess
import sys
import termios
import threading
import time
import tty

import paho.mqtt.client as mqtt
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from tools import deploy  # noqa: E402
from tools.run_local import micropython_command  # noqa: E402

# mpy-cross header byte 2 holds the architecture in its upper 6 bits (py/persistentcode.h).
MPY_ARCH = {"x64": 2, "armv6m": 4, "xtensawin": 10}


@pytest.fixture
def secrets_file(tmp_path):
    path = tmp_path / "secrets.py"
    path.write_text('WIFI_PASSWORD = "test"\nMQTT_PASSWORD = None\n')
    return str(path)


def remotes(steps, action=None):
    return [s.remote for s in steps if action is None or s.action == action]


# ---- the plan ------------------------------------------------------------------


def test_plan_for_an_empty_board_copies_lib_compiled_and_the_entry_points(tmp_path, secrets_file):
    steps = deploy.plan("esp32_devkit", {}, build_dir=str(tmp_path / "build"), secrets_path=secrets_file)
    assert all(s.action == "copy" for s in steps)
    by_remote = {s.remote: s.local for s in steps}
    assert by_remote["/board.py"] == os.path.join(ROOT, "boards", "esp32_devkit.py")
    assert by_remote["/main.py"] == os.path.join(ROOT, "firmware", "main.py")
    assert by_remote["/boot.py"] == os.path.join(ROOT, "firmware", "boot.py")
    assert by_remote["/secrets.py"] == secrets_file
    lib_sources = []
    for folder, _, files in os.walk(os.path.join(ROOT, "lib")):
        lib_sources += [os.path.relpath(os.path.join(folder, f), ROOT) for f in files if f.endswith(".py")]
    expected = {"/" + p.replace(os.sep, "/")[:-3] + ".mpy" for p in lib_sources}
    # The broker's half of the codec is for the host's tests, the manifest
    # writer for tools/ota.py, CPython's stand-ins for the runtime's
    # built-ins for CPython: nothing on a board imports them.
    for host_only in ("mqtt/broker_codec", "ota/manifest_text", "compat_cpython", "netcompat_cpython"):
        expected.remove("/lib/" + host_only + ".mpy")
    assert {r for r in by_remote if r.startswith("/lib/")} == expected
    for remote in expected:
        local = by_remote[remote]
        assert local.startswith(str(tmp_path / "build" / "lib"))
        with open(local, "rb") as f:
            assert f.read(2) == b"M\x06", local  # a .mpy, version 6
    # Nothing of the Unix port's fakes goes to a board.
    assert not [r for r in by_remote if "unix_fakes" in r or r.endswith(("/machine.mpy", "/network.mpy"))]


@pytest.mark.parametrize("board, arch", [("esp32_devkit", "xtensawin"), ("pico_w", "armv6m")])
def test_native_code_is_compiled_for_the_boards_architecture(board, arch, tmp_path, secrets_file):
    # lib/ has no @micropython.native code today, so its .mpy files carry no
    # architecture; a project tree with one native function shows the -march.
    root = tmp_path / "project"
    (root / "lib").mkdir(parents=True)
    (root / "boards").mkdir()
    (root / "firmware").mkdir()
    shutil.copy(os.path.join(ROOT, "boards", board + ".py"), root / "boards")
    for name in ("boot.py", "main.py"):
        shutil.copy(os.path.join(ROOT, "firmware", name), root / "firmware")
    (root / "lib" / "fast.py").write_text("import micropython\n\n@micropython.native\ndef f(x):\n    return x + 1\n")
    steps = deploy.plan(board, {}, root=str(root), build_dir=str(tmp_path / "build"), secrets_path=secrets_file)
    (fast,) = [s.local for s in steps if s.remote == "/lib/fast.mpy"]
    with open(fast, "rb") as f:
        header = f.read(4)
    assert header[2] >> 2 == MPY_ARCH[arch]


def test_unchanged_files_are_skipped_and_changed_ones_copied(tmp_path, secrets_file):
    build_dir = str(tmp_path / "build")
    first = deploy.plan("pico_w", {}, build_dir=build_dir, secrets_path=secrets_file)
    manifest = deploy.new_manifest(first)
    again = deploy.plan("pico_w", manifest, build_dir=build_dir, secrets_path=secrets_file)
    assert remotes(again, "copy") == []
    assert len(remotes(again, "skip")) == len(first)

    with open(secrets_file, "a") as f:
        f.write("# changed\n")
    manifest["/lib/mqtt/client.mpy"] = "0" * 64  # what an older client.mpy hashed to
    changed = deploy.plan("pico_w", manifest, build_dir=build_dir, secrets_path=secrets_file)
    assert sorted(remotes(changed, "copy")) == ["/lib/mqtt/client.mpy", "/secrets.py"]


def test_files_an_earlier_deploy_left_are_removed(tmp_path, secrets_file):
    manifest = {"/lib/sensors/old_driver.mpy": "ab" * 32}
    steps = deploy.plan("pico_w", manifest, build_dir=str(tmp_path / "b"), secrets_path=secrets_file)
    assert [(s.local, s.remote) for s in steps if s.action == "remove"] == [(None, "/lib/sensors/old_driver.mpy")]


def test_force_copies_everything(tmp_path, secrets_file):
    build_dir = str(tmp_path / "build")
    manifest = deploy.new_manifest(deploy.plan("pico_w", {}, build_dir=build_dir, secrets_path=secrets_file))
    steps = deploy.plan("pico_w", manifest, build_dir=build_dir, secrets_path=secrets_file, force=True)
    assert {s.action for s in steps} == {"copy"}


def test_builds_are_identical_wherever_the_checkout_is(tmp_path, secrets_file):
    # The embedded source name is the board path, so hashes match across machines.
    a = deploy.plan("pico_w", {}, build_dir=str(tmp_path / "a"), secrets_path=secrets_file)
    b = deploy.plan("pico_w", {}, build_dir=str(tmp_path / "b"), secrets_path=secrets_file)
    assert deploy.new_manifest(a) == deploy.new_manifest(b)


# ---- errors ----------------------------------------------------------------------


def run_deploy(*args):
    return subprocess.run(
        [sys.executable, os.path.join(ROOT, "tools", "deploy.py"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def test_unknown_board_lists_the_boards():
    result = run_deploy("--board", "esp8266", "--port", "/dev/ttyUSB0")
    assert result.returncode == 2
    assert "unknown board 'esp8266'" in result.stderr
    for name in ("esp32_devkit", "pico_w", "unix"):
        assert name in result.stderr
    assert "secrets_template" not in result.stderr


def test_missing_secrets_says_how_to_make_them(tmp_path):
    result = run_deploy("--board", "esp32_devkit", "--port", "/dev/ttyUSB0", "--secrets", str(tmp_path / "none.py"))
    assert result.returncode == 2
    assert "not found" in result.stderr
    assert "cp boards/secrets_template.py boards/secrets.py" in result.stderr


def test_missing_serial_port_is_named(secrets_file):
    result = run_deploy("--board", "esp32_devkit", "--port", "/dev/ttyUSB97", "--secrets", secrets_file)
    assert result.returncode == 2
    assert "serial port /dev/ttyUSB97 not found" in result.stderr


def test_board_without_an_architecture_is_an_error(tmp_path, secrets_file):
    (tmp_path / "boards").mkdir()
    (tmp_path / "boards" / "mystery.py").write_text('ROOM = "attic"\n')
    with pytest.raises(deploy.DeployError, match="no architecture for board 'mystery'"):
        deploy.plan("mystery", {}, root=str(tmp_path), secrets_path=secrets_file)


@pytest.mark.parametrize(
    "setting, message",
    [
        ('BROKER = {"host": "192.0.2.1", "port": 70000}', "BROKER port must be a whole number from 1 to 65535"),
        ('SENSORS = [{"driver": "sim_temperature", "qos": 3}]', "SENSORS[0] qos must be 0, 1 or 2, got 3"),
        ("BUFER = 512", "unknown 'BUFER' (did you mean 'BUFFER'?"),
    ],
)
def test_a_board_the_node_would_refuse_is_refused_before_anything_is_copied(setting, message, tmp_path, secrets_file):
    (tmp_path / "boards").mkdir()
    with open(os.path.join(ROOT, "boards", "esp32_devkit.py")) as f:
        (tmp_path / "boards" / "broken.py").write_text(f.read() + '\nARCH = "xtensawin"\n' + setting + "\n")
    build = tmp_path / "build"
    with pytest.raises(deploy.DeployError) as refused:
        deploy.plan("broken", {}, root=str(tmp_path), build_dir=str(build), secrets_path=secrets_file)
    assert "boards/broken.py would stop the board at boot" in str(refused.value)
    assert message in str(refused.value)
    assert not build.exists()  # nothing compiled, nothing to copy


def test_dry_run_touches_no_board(secrets_file, tmp_path):
    result = run_deploy(
        "--board", "pico_w", "--dry-run", "--secrets", secrets_file, "--build-dir", str(tmp_path / "build")
    )
    assert result.returncode == 0, result.stderr
    assert "mpy-cross -march=armv6m" in result.stdout
    assert "copy   /lib/node/node.mpy" in result.stdout
    assert "to copy, 0 unchanged, 0 to remove" in result.stdout


# ---- a real deploy through mpremote, into the Unix port on a pty ---------------

BOOTSTRAP = """\
# What a board's firmware does at reset: run boot.py, then main.py, then the REPL (-i).
import os
for _name in ("boot.py", "main.py"):
    try:
        os.stat(_name)
    except OSError:
        continue
    exec(open(_name).read(), {"__name__": "__main__"})
"""


class UnixBoard:
    """The Unix port as a serial device. micropython runs on one pty with
    the pty as its controlling terminal (so Ctrl-C from mpremote is SIGINT,
    as a board's UART turns it into KeyboardInterrupt); a thread relays
    bytes to a second pty, whose path mpremote and pyserial open. The
    board's filesystem is a directory (the process's cwd); machine.reset()
    (the Unix fake exits) restarts the process through boot.py and main.py."""

    MAX_RESETS = 10

    def __init__(self, flash, env):
        self.flash = str(flash)
        self.env = env
        self.device_master, self.device_slave = pty.openpty()
        self.host_master, self.host_slave = pty.openpty()
        tty.setraw(self.device_slave)
        attrs = termios.tcgetattr(self.device_slave)
        attrs[3] |= termios.ISIG  # Ctrl-C interrupts a running program
        termios.tcsetattr(self.device_slave, termios.TCSANOW, attrs)
        tty.setraw(self.host_slave)
        self.path = os.ttyname(self.host_slave)
        self.bootstrap = os.path.join(os.path.dirname(self.flash), "bootstrap.py")
        with open(self.bootstrap, "w") as f:
            f.write(BOOTSTRAP)
        self.stop = threading.Event()
        self.process = None
        self.resets = 0
        self.output = bytearray()
        self.threads = [threading.Thread(target=self._relay, daemon=True)]
        self.threads.append(threading.Thread(target=self._supervise, daemon=True))

    def _spawn(self, args):
        # A new session with the pty as its controlling terminal: util-linux
        # `setsid -c` where there is one (preexec_fn is unsafe with threads).
        setsid = shutil.which("setsid")
        prefix = [setsid, "-c"] if setsid else []

        def take_terminal():
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        self.process = subprocess.Popen(
            prefix + micropython_command() + args,
            stdin=self.device_slave,
            stdout=self.device_slave,
            stderr=self.device_slave,
            cwd=self.flash,
            env=self.env,
            preexec_fn=None if setsid else take_terminal,
        )

    def start(self):
        self._spawn([])  # an empty board: straight to the REPL
        for t in self.threads:
            t.start()
        return self

    def _relay(self):
        while not self.stop.is_set():
            ready, _, _ = select.select([self.device_master, self.host_master], [], [], 0.05)
            for fd in ready:
                try:
                    data = os.read(fd, 4096)
                except OSError:
                    continue
                if fd == self.device_master:
                    self.output += data
                    os.write(self.host_master, data)
                else:
                    os.write(self.device_master, data)

    def _supervise(self):
        while not self.stop.is_set():
            if self.process.poll() is not None and self.resets < self.MAX_RESETS:
                self.resets += 1
                self._spawn(["-i", self.bootstrap])
            time.sleep(0.05)

    def close(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=5)
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=5)
        for fd in (self.device_master, self.device_slave, self.host_master, self.host_slave):
            os.close(fd)


@pytest.fixture
def unix_board(tmp_path, broker):
    flash = tmp_path / "flash"
    flash.mkdir()
    env = dict(os.environ)
    env.pop("BOARD", None)  # main.py then imports /board.py, as on a board
    env.update(
        {
            # A board's sys.path: the root and /lib; `machine` and `network` built in.
            "MICROPYPATH": ":".join(
                [".frozen", str(flash), str(flash / "lib"), os.path.join(ROOT, "firmware", "unix_fakes")]
            ),
            "MQTT_HOST": "127.0.0.1",
            "MQTT_PORT": str(broker.port),
        }
    )
    board = UnixBoard(flash, env).start()
    yield board
    board.close()


def wait_for(predicate, timeout_s, step_s=0.1):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step_s)
    return predicate()


def test_deploy_through_mpremote_to_the_unix_port_runs_the_node(unix_board, broker, secrets_file, tmp_path, capsys):
    received = []
    subscriber = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    subscriber.on_message = lambda c, u, m: received.append((m.topic, m.payload))
    subscriber.connect("127.0.0.1", broker.port)
    subscriber.subscribe("house/kitchen/#", 1)
    subscriber.loop_start()
    build_dir = str(tmp_path / "build")
    args = ["--board", "unix", "--port", unix_board.path, "--secrets", secrets_file, "--build-dir", build_dir]
    args += ["--remote-root", unix_board.flash]
    try:
        assert deploy.main(args) == 0
        out = capsys.readouterr().out
        assert "mpy-cross -march=x64" in out
        flash = unix_board.flash
        with open(os.path.join(flash, "deploy_manifest.json")) as f:
            manifest = json.load(f)
        for remote, digest in manifest.items():
            assert deploy.file_hash(flash + remote) == digest, remote
        assert "/lib/mqtt/client.mpy" in manifest and "/board.py" in manifest
        with open(os.path.join(flash, "board.py")) as f, open(os.path.join(ROOT, "boards", "unix.py")) as g:
            assert f.read() == g.read()
        # The reset restarted the board; main.py loaded board.py and the .mpy
        # files from its flash and the node publishes to the broker.
        assert wait_for(lambda: ("house/kitchen/unix-node/status", b"online") in received, 20), unix_board.output
        assert wait_for(lambda: any(t == "house/kitchen/temperature" for t, _ in received), 10)
        assert unix_board.resets == 1

        # A second deploy with nothing changed copies nothing (and still resets).
        assert deploy.main(args) == 0
        out = capsys.readouterr().out
        assert "deploy: 0 to copy, %d unchanged, 0 to remove" % len(manifest) in out
        assert wait_for(lambda: unix_board.resets == 2, 10)

        # Change the secrets: only /secrets.py goes.
        with open(secrets_file, "a") as f:
            f.write("# rotated\n")
        assert deploy.main(args + ["--no-reset"]) == 0
        out = capsys.readouterr().out
        assert "deploy: 1 to copy" in out and "copy   /secrets.py" in out
        with open(os.path.join(flash, "secrets.py")) as f:
            assert f.read().endswith("# rotated\n")
    finally:
        subscriber.loop_stop()
        subscriber.disconnect()


def test_follow_prints_the_boards_log(unix_board, secrets_file, tmp_path, capsys):
    args = ["--board", "unix", "--port", unix_board.path, "--secrets", secrets_file]
    args += ["--build-dir", str(tmp_path / "build"), "--remote-root", unix_board.flash, "--follow", "--follow-s", "4"]
    assert deploy.main(args) == 0
    out = capsys.readouterr().out
    assert "deploy: following %s" % unix_board.path in out
    assert "mqtt: connected to 127.0.0.1:" in out


def test_a_board_with_a_watchdog_is_fed_between_copies(unix_board, secrets_file, tmp_path):
    # boards/pico_w.py runs an 8 s watchdog that Ctrl-C cannot stop; the
    # deploy feeds it before each copy (here the Unix port's fake WDT counts).
    steps = deploy.plan("unix", {}, build_dir=str(tmp_path / "build"), secrets_path=secrets_file)
    board = deploy.Board(unix_board.path, unix_board.flash, watchdog_ms=8000, log=lambda text: None)
    assert board.read_manifest() == {}
    board.apply(steps, {})
    assert board.read_manifest() == deploy.new_manifest(steps)
    feeds = board.exec("import machine\nprint('FEEDS', machine.feeds)")
    assert int(feeds.split("FEEDS")[1]) >= len(steps) + 2


class TLSBoard:
    BROKER = {"host": "broker.lan", "tls": True, "ca": "/ca.pem", "cert": "/certs/node.pem", "key": "/certs/node.key"}


def test_files_the_broker_settings_name_go_to_the_board(tmp_path):
    tls = tmp_path / "boards" / "tls"
    tls.mkdir(parents=True)
    for name in ("ca.pem", "node.pem", "node.key"):
        (tls / name).write_text(name)
    assert deploy.tls_files(TLSBoard, root=str(tmp_path)) == [
        (str(tls / "ca.pem"), "/ca.pem"),
        (str(tls / "node.pem"), "/certs/node.pem"),
        (str(tls / "node.key"), "/certs/node.key"),
    ]


def test_a_tls_file_missing_on_the_host_says_where_to_put_it(tmp_path):
    tls = tmp_path / "boards" / "tls"
    tls.mkdir(parents=True)
    (tls / "ca.pem").write_text("ca")
    with pytest.raises(
        deploy.DeployError, match=r"BROKER cert is '/certs/node.pem': put that file at boards/tls/node.pem"
    ):
        deploy.tls_files(TLSBoard, root=str(tmp_path))


def test_boards_without_tls_files_get_none(tmp_path):
    for name in deploy.board_names():
        assert deploy.tls_files(deploy.load_board(name), root=str(tmp_path)) == [], name


@pytest.mark.parametrize(
    "broker, message",
    [
        ({"ca": "/ca.pem"}, "BROKER ca is set but tls is not True"),
        ({"tls": True, "ca": "/certs/node.pem", "cert": "/node.pem", "key": "/node.key"}, "both would come from"),
        ({"tls": True, "ca": "ca.pem"}, "a file's path on the board"),
    ],
    ids=["without-tls", "same-name-twice", "relative"],
)
def test_tls_files_the_node_could_not_use_are_refused(broker, message, tmp_path):
    class Board:
        BROKER = broker

    tls = tmp_path / "boards" / "tls"
    tls.mkdir(parents=True)
    for name in ("ca.pem", "node.pem", "node.key"):
        (tls / name).write_text(name)
    with pytest.raises(deploy.DeployError, match=message):
        deploy.tls_files(Board, root=str(tmp_path))


def test_a_tls_file_may_not_overwrite_what_deploy_puts_on_the_board(tmp_path, secrets_file):
    root = tmp_path / "checkout"
    shutil.copytree(os.path.join(ROOT, "lib"), root / "lib")
    shutil.copytree(os.path.join(ROOT, "firmware"), root / "firmware")
    (root / "boards" / "tls").mkdir(parents=True)
    (root / "boards" / "tls" / "main.py").write_text("not a firmware")
    (root / "boards" / "rogue.py").write_text(
        'ARCH = "armv6m"\nROOM = "attic"\nNODE = "rogue"\nSENSORS = [{"driver": "sim_temperature"}]\n'
        'BROKER = {"host": "broker.lan", "tls": True, "ca": "/main.py"}\n'
    )
    with pytest.raises(deploy.DeployError, match="'/main.py', which would overwrite"):
        deploy.plan("rogue", {}, root=str(root), build_dir=str(tmp_path / "build"), secrets_path=secrets_file)
