"""`make run` (tools/run_local.py): it starts mosquitto and the node, shows
the readings, and, when the node resets (the reboot command here), starts it
again as a board would instead of ending; `kill` ends it cleanly."""

import os
import re
import subprocess
import sys
import threading

import paho.mqtt.client as mqtt

from test_node_e2e import wait_until

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_readings_shown_and_node_started_again_after_a_reset():
    proc = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "tools", "run_local.py"), "--seconds", "40"],
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
