"""What the fault tests and tools/soak.py share: client scripts run as
processes on CPython or the Unix port, and a paho subscriber connected
straight to mosquitto (past the fault proxy) as the independent witness."""

import json
import os
import subprocess
import sys
import threading
import time

import paho.mqtt.client as paho

from harness import micropython

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LIB = os.path.join(ROOT, "lib")
RUNTIMES = ("cpython", "micropython")


class ScriptFailure(AssertionError):
    pass


class Script:
    """A running client script. A thread reads its output (stdout and
    stderr merged) and stamps each line with the host's monotonic clock."""

    def __init__(self, runtime, path, args, heapsize=None):
        args = [str(a) for a in args]
        pipes = dict(stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True)
        if runtime == "cpython":
            env = dict(os.environ, PYTHONPATH=LIB, PYTHONUNBUFFERED="1")
            self.command = [sys.executable, path, *args]
            self.proc = subprocess.Popen(self.command, cwd=ROOT, env=env, **pipes)
        elif runtime == "micropython":
            self.command = micropython.command([path, *args], heapsize)
            self.proc = micropython.popen([path, *args], heapsize=heapsize, compiled=heapsize is not None, **pipes)
        else:
            raise ValueError("runtime must be 'cpython' or 'micropython', got %r" % (runtime,))
        self.lines = []  # (time.monotonic(), line)
        self.ended = False
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            with self._changed:
                self.lines.append((time.monotonic(), line.rstrip("\n")))
                self._changed.notify_all()
        with self._changed:
            self.ended = True
            self._changed.notify_all()

    def output(self, last=80):
        with self._changed:
            return "\n".join(line for _, line in self.lines[-last:])

    def find(self, prefix, timeout_s, start=0, contains=""):
        """(host time, index, line) of the first line from index `start` on
        that starts with prefix (and contains `contains`), or None if none
        comes within timeout_s or the script ends first."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while True:
                for i in range(start, len(self.lines)):
                    t, line = self.lines[i]
                    if line.startswith(prefix) and contains in line:
                        return t, i, line
                left = deadline - time.monotonic()
                if self.ended or left <= 0:
                    return None
                self._changed.wait(left)

    def wait_for(self, prefix, timeout_s, start=0, contains=""):
        found = self.find(prefix, timeout_s, start, contains)
        if found is None:
            raise ScriptFailure(
                "no line %r%s within %.1f s from %s\n--- output\n%s"
                % (prefix, " containing %r" % contains if contains else "", timeout_s, self.command, self.output())
            )
        return found

    def matching(self, prefix):
        with self._changed:
            return [line for _, line in self.lines if line.startswith(prefix)]

    def finish(self, timeout_s):
        """Wait for the script to exit; returns its exit code."""
        try:
            code = self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise ScriptFailure(
                "%s still running after %.0f s\n--- output\n%s" % (self.command, timeout_s, self.output())
            )
        self._reader.join(timeout=5)
        return code

    def result(self, timeout_s):
        """The JSON object of the script's `RESULT {...}` line, after it exits."""
        self.finish(timeout_s)
        for line in self.matching("RESULT {"):
            return json.loads(line[len("RESULT ") :])
        raise ScriptFailure("no RESULT line from %s\n--- output\n%s" % (self.command, self.output()))

    def terminate(self):
        """Ask the script to finish (SIGTERM); scripts that handle it print their RESULT."""
        if self.proc.poll() is None:
            self.proc.terminate()

    def close(self):
        """Kill it if still running (by its own PID), and release the pipe."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self._reader.join(timeout=5)
        self.proc.stdout.close()


def stream_args(port, client_id, topic, qos, count, **options):
    """Arguments of tests/scripts/qos_stream.py."""
    return ["127.0.0.1", port, client_id, topic, qos, count] + ["%s=%s" % item for item in options.items()]


class Subscriber:
    """A paho client on mosquitto itself: (re)subscribes on every connect,
    reconnects by itself, and keeps every (topic, payload) it receives, in
    order, under a lock."""

    def __init__(self, port, topic, qos, client_id, clean_session=False):
        self.topic = topic
        self.qos = qos
        self.messages = []  # (topic, payload text)
        self.connects = 0
        self.subscribed = 0
        self._changed = threading.Condition()
        client = paho.Client(
            paho.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean_session, protocol=paho.MQTTv311
        )
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.reconnect_delay_set(min_delay=0.1, max_delay=0.5)
        self.client = client
        client.connect("127.0.0.1", port, keepalive=30)
        client.loop_start()

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        with self._changed:
            self.connects += 1
            self._changed.notify_all()
        client.subscribe(self.topic, self.qos)

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties):
        with self._changed:
            self.subscribed += 1
            self._changed.notify_all()

    def _on_message(self, client, userdata, message):
        with self._changed:
            self.messages.append((message.topic, message.payload.decode(errors="replace")))
            self._changed.notify_all()

    @property
    def payloads(self):
        with self._changed:
            return [payload for _, payload in self.messages]

    def received(self):
        return self.payloads

    def numbers(self, topic=None):
        """Integer payloads received, in arrival order (non-numbers skipped)."""
        with self._changed:
            out = []
            for t, payload in self.messages:
                if (topic is None or t == topic) and payload.isdigit():
                    out.append(int(payload))
            return out

    def wait(self, condition, timeout_s, what=None):
        """True once condition() holds, False at the timeout; with `what`,
        the test fails there instead, saying what did not happen."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while not condition():
                left = deadline - time.monotonic()
                if left <= 0:
                    if what:
                        raise AssertionError(
                            "%s within %.1f s (paho received %d messages)" % (what, timeout_s, len(self.messages))
                        )
                    return False
                self._changed.wait(left)
            return True

    def wait_subscribed(self, timeout_s=10):
        if not self.wait(lambda: self.subscribed > 0, timeout_s):
            raise AssertionError("paho subscriber got no SUBACK within %d s" % timeout_s)

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def first_occurrence_order(numbers):
    """The numbers in the order each first arrived."""
    seen = set()
    order = []
    for n in numbers:
        if n not in seen:
            seen.add(n)
            order.append(n)
    return order


def tally(numbers, sent):
    """arrived (distinct), duplicated (extra copies), lost, and whether the
    first arrivals kept the publish order, for numbers 0..sent-1."""
    counts = {}
    for n in numbers:
        counts[n] = counts.get(n, 0) + 1
    wanted = set(range(sent))
    arrived = len(wanted & set(counts))
    order = [n for n in first_occurrence_order(numbers) if n in wanted]
    return {
        "sent": sent,
        "arrived": arrived,
        "duplicated": sum(c - 1 for n, c in counts.items() if n in wanted),
        "lost": sent - arrived,
        "unexpected": sum(c for n, c in counts.items() if n not in wanted),
        "in_order": order == sorted(order),
    }
