"""`make run`: a node on the MicroPython Unix port with simulated sensors,
publishing to a private mosquitto that this starts, and the readings as a
subscriber receives them. Ctrl-C (or --seconds) stops everything it started."""

import argparse
import os
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tools.mosquitto import Mosquitto  # noqa: E402

# How the Unix port's fakes end the process for a reset (firmware/unix_fakes/machine.py).
RESETS = {75: "machine.reset()", -9: "the watchdog, or a SIGKILL"}


def micropython_command():
    local = os.path.join(os.path.dirname(sys.executable), "micropython")
    return [local if os.path.exists(local) else "micropython"]


def node_environment(host, port, board="unix"):
    env = dict(os.environ)
    paths = [".frozen"] + [os.path.join(ROOT, *p) for p in (("lib",), ("boards",), ("firmware", "unix_fakes"))]
    env.update({"MICROPYPATH": ":".join(paths), "BOARD": board, "MQTT_HOST": host, "MQTT_PORT": str(port)})
    return env


def start_node(host, port, board="unix", **popen_kwargs):
    """firmware/main.py on the Unix port. In a session of its own, so that a
    Ctrl-C in the terminal reaches only this script, which then stops the node
    with SIGTERM (no KeyboardInterrupt traceback from the node)."""
    popen_kwargs.setdefault("start_new_session", True)
    return subprocess.Popen(
        micropython_command() + [os.path.join(ROOT, "firmware", "main.py")],
        env=node_environment(host, port, board),
        cwd=ROOT,
        **popen_kwargs,
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=0, help="stop after this long (default: until Ctrl-C)")
    parser.add_argument("--board", default="unix", help="board file in boards/ (default: unix)")
    args = parser.parse_args()
    # `kill` ends it as Ctrl-C does: through the finally below, which stops what it started.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))

    import paho.mqtt.client as mqtt

    broker = Mosquitto().start()
    node = None
    subscriber = None
    try:
        host, port = broker.address
        print("mosquitto on %s:%d (log: %s)" % (host, port, broker.log_path), flush=True)
        subscriber = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)

        def on_message(client, userdata, message):
            payload = message.payload.decode(errors="replace")
            if message.topic.startswith("homeassistant/"):
                payload = "(discovery config, %d bytes)" % len(message.payload)
            print("%s  %-44s %s" % (time.strftime("%H:%M:%S"), message.topic, payload), flush=True)

        subscriber.on_message = on_message
        subscriber.connect(host, port)
        subscriber.subscribe([("house/#", 1), ("homeassistant/#", 1)])
        subscriber.loop_start()
        node = start_node(host, port, args.board)
        print("node running on the Unix port (pid %d), board %s; Ctrl-C stops" % (node.pid, args.board), flush=True)
        deadline = time.monotonic() + args.seconds if args.seconds else None
        while deadline is None or time.monotonic() < deadline:
            time.sleep(0.2)
            if node.poll() is None:
                continue
            if node.returncode not in RESETS:
                print("node exited with code %d" % node.returncode, flush=True)
                return node.returncode or 1
            # A board starts main.py again after a reset: so does this.
            print("node reset (%s): starting it again, as a board would" % RESETS[node.returncode], flush=True)
            node = start_node(host, port, args.board)
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        if node is not None and node.poll() is None:
            node.send_signal(signal.SIGTERM)
            try:
                node.wait(timeout=5)
            except subprocess.TimeoutExpired:
                node.kill()
                node.wait()
        if subscriber is not None:
            subscriber.loop_stop()
            subscriber.disconnect()
        broker.close()


if __name__ == "__main__":
    sys.exit(main())
