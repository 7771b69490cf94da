"""`make run` (tools/run_local.py): it starts mosquitto and the node, shows
the readings, and, when the node resets (the reboot command here), starts it
again as a board would instead of ending; `kill` ends it cleanly."""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import paho.mqtt.client as mqtt
import pytest

from test_node_e2e import wait_until
from tools import run_local

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_readings_shown_and_node_started_again_after_a_reset():
    proc = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "tools", "run_local.py"), "--seconds", "80"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(line.rstrip("\n") for line in proc.stdout), daemon=True)
    reader.start()

    def seen(pattern, start=0):
        return [i for i, line in enumerate(list(lines)) if i >= start and re.search(pattern, line)]

    try:
        assert wait_until(lambda: seen(r"house/kitchen/temperature\s+\d+\.\d\d$"), 20), "\n".join(lines)
        # A node takes a reboot command only once up for 30 s (a queued flood
        # must not reboot it at every boot): wait that out.
        time.sleep(31)
        port = int(re.search(r"mosquitto on 127\.0\.0\.1:(\d+)", "\n".join(lines)).group(1))
        commander = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        commander.connect("127.0.0.1", port)
        commander.loop_start()
        commander.publish("house/kitchen/unix-node/set/reboot", b"", qos=1).wait_for_publish(5)
        commander.loop_stop()
        commander.disconnect()
        assert wait_until(lambda: seen(r"node reset \(machine\.reset\(\)\): starting it again"), 15), "\n".join(lines)
        after = seen(r"node reset")[0]
        # The new node announces itself and publishes again.
        assert wait_until(lambda: seen(r"house/kitchen/temperature\s+\d+\.\d\d$", after), 20), "\n".join(lines)
        assert seen(r"house/kitchen/unix-node/status\s+online", after), "\n".join(lines)
    finally:
        if proc.poll() is None:
            proc.terminate()  # as `kill` would: it stops what it started
        proc.wait(timeout=15)
        reader.join(timeout=5)
    assert proc.returncode == 0, "\n".join(lines)
    broker_dir = re.search(r"mosquitto on .*log: (\S+)/mosquitto.log", "\n".join(lines))
    assert broker_dir and not os.path.exists(broker_dir.group(1)), "mosquitto's directory left behind"
    assert not seen(r"node exited with code"), "\n".join(lines)


# ---- the broker, signals, and `make monitor` beside it ---------------------------


class RunLocal:
    """tools/run_local.py in a process of its own, its output collected."""

    def __init__(self, args, env=None, ignore_sigint=False):
        environment = dict(os.environ)
        environment.pop("MQTT_HOST", None)
        environment.pop("MQTT_PORT", None)
        environment.update(env or {})
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(ROOT, "tools", "run_local.py"), *args],
            cwd=ROOT,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
            # As a job started in the background by a script: SIGINT ignored.
            preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if ignore_sigint else None,
        )
        self.lines = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def seen(self, pattern):
        return [line for line in list(self.lines) if re.search(pattern, line)]

    def output(self):
        return "\n".join(self.lines)

    def node_pid(self):
        found = self.seen(r"node running on the Unix port \(pid (\d+)\)")
        return int(re.search(r"pid (\d+)", found[0]).group(1)) if found else None

    def wait(self, timeout=15):
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self.reader.join(timeout=5)

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.wait()


def gone(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A child of the stopped runner may wait for init to reap it.
    with open("/proc/%d/stat" % pid) as f:
        return f.read().split(")")[-1].split()[0] == "Z"


READING = r"house/kitchen/temperature\s+\d+\.\d\d$"


@pytest.mark.parametrize("how", ["arguments", "environment"])
def test_runs_against_a_given_broker_and_starts_none(make_broker, how):
    broker = make_broker()
    args, env = ["--seconds", "30"], None
    if how == "arguments":
        args += ["--host", "127.0.0.1", "--port", str(broker.port)]
    else:
        env = {"MQTT_HOST": "127.0.0.1", "MQTT_PORT": str(broker.port)}
    run = RunLocal(args, env)
    try:
        assert wait_until(lambda: run.seen(READING), 20), run.output()
        assert run.seen(r"broker 127\.0\.0\.1:%d \(not started here\)" % broker.port), run.output()
        assert not run.seen("mosquitto on"), run.output()
        assert "unix-node" in broker.log()  # the node is on the given broker
    finally:
        run.proc.terminate()
        assert run.wait() == 0, run.output()


def test_sigint_stops_everything_even_when_inherited_as_ignored():
    run = RunLocal(["--seconds", "60"], ignore_sigint=True)
    try:
        assert wait_until(lambda: run.seen(READING), 20), run.output()
        node = run.node_pid()
        run.proc.send_signal(signal.SIGINT)
        assert run.wait() == 0, run.output()
        assert wait_until(lambda: gone(node), 5), "the node outlived make run"
        broker_dir = re.search(r"log: (\S+)/mosquitto.log", run.output()).group(1)
        assert not os.path.exists(broker_dir), "mosquitto's directory left behind"
    finally:
        run.close()


def test_exits_when_its_broker_dies():
    run = RunLocal(["--seconds", "60"])
    try:
        assert wait_until(lambda: run.seen(READING), 20), run.output()
        node = run.node_pid()
        with open(run_local.ADDRESS_FILE) as f:
            broker_pid = json.load(f)["broker_pid"]
        os.kill(broker_pid, signal.SIGKILL)
        assert run.wait() == 1, run.output()
        assert run.seen(r"mosquitto exited \(log: .*\): stopping"), run.output()
        assert wait_until(lambda: gone(node), 5), "the node outlived make run"
        assert not os.path.exists(run_local.ADDRESS_FILE)
    finally:
        run.close()


def test_acl_run_refuses_strangers_and_monitor_finds_it_and_logs_in():
    run = RunLocal(["--acl", "--seconds", "60"])
    try:
        assert wait_until(lambda: run.seen(READING), 20), run.output()
        assert run.seen(r"access control on: users unix-node, viewer"), run.output()
        port = int(re.search(r"mosquitto on 127\.0\.0\.1:(\d+)", run.output()).group(1))
        stranger = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        refused = []
        stranger.on_connect = lambda c, userdata, flags, reason, properties: refused.append(reason.is_failure)
        stranger.connect("127.0.0.1", port)
        stranger.loop_start()
        assert wait_until(lambda: refused, 5) and refused == [True]
        stranger.loop_stop()
        env = {k: v for k, v in os.environ.items() if k not in ("MQTT_HOST", "MQTT_PORT")}
        monitor = subprocess.run(
            [sys.executable, os.path.join(ROOT, "tools", "monitor.py"), "--plain", "--seconds", "6"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert monitor.returncode == 0, monitor.stdout + monitor.stderr
        assert re.search(r"kitchen\s+temperature\s+\d+\.\d\d", monitor.stdout), monitor.stdout + monitor.stderr
    finally:
        run.proc.terminate()
        run.wait()
        run.close()
