"""`make run`: a node on the MicroPython Unix port with simulated sensors,
publishing to a private mosquitto that this starts (or to the broker that
--host/--port or MQTT_HOST/MQTT_PORT name, starting none), and the readings
as a subscriber receives them. Ctrl-C, SIGTERM or --seconds stops everything
it started; so does its private broker dying.

While it runs, build/run_local.json says where its broker is (and, with
--acl, the viewer's login), so that `make monitor` finds it."""

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tools.mosquitto import Mosquitto, controller_acl, house_acl  # noqa: E402

# How the Unix port's fakes end the process for a reset (firmware/unix_fakes/machine.py).
RESETS = {75: "machine.reset()", -9: "the watchdog, or a SIGKILL"}
# Where a running `make run` says which broker it uses (tools/monitor.py reads it).
ADDRESS_FILE = os.path.join(ROOT, "build", "run_local.json")
VIEWER = "viewer"


def micropython_command():
    local = os.path.join(os.path.dirname(sys.executable), "micropython")
    return [local if os.path.exists(local) else "micropython"]


def node_environment(host, port, board="unix", extra_path=None):
    env = dict(os.environ)
    paths = [".frozen"] + [os.path.join(ROOT, *p) for p in (("lib",), ("boards",), ("firmware", "unix_fakes"))]
    if extra_path is not None:
        paths.insert(1, extra_path)  # its secrets.py before a developer's boards/secrets.py
    env.update({"MICROPYPATH": ":".join(paths), "BOARD": board, "MQTT_HOST": host, "MQTT_PORT": str(port)})
    return env


def start_node(host, port, board="unix", extra_path=None, **popen_kwargs):
    """firmware/main.py on the Unix port. In a session of its own, so that a
    Ctrl-C in the terminal reaches only this script, which then stops the node
    with SIGTERM (no KeyboardInterrupt traceback from the node)."""
    popen_kwargs.setdefault("start_new_session", True)
    return subprocess.Popen(
        micropython_command() + [os.path.join(ROOT, "firmware", "main.py")],
        env=node_environment(host, port, board, extra_path),
        cwd=ROOT,
        **popen_kwargs,
    )


def node_name(board):
    """The NODE of boards/<board>.py, read without importing it."""
    with open(os.path.join(ROOT, "boards", board + ".py")) as f:
        for line in f:
            if line.startswith("NODE ="):
                return line.split("=", 1)[1].split("#")[0].strip().strip("\"'")
    raise SystemExit("run_local: boards/%s.py has no NODE = line" % board)


def access_controlled(board, folder):
    """Users and ACL for a broker that lets only the node and the viewer in,
    and a board of the same name in folder that logs in as the node."""
    node = node_name(board)
    users = {node: secrets.token_hex(8), VIEWER: secrets.token_hex(8)}
    with open(os.path.join(folder, "run_board.py"), "w") as f:
        f.write("from %s import *  # noqa\nBROKER = dict(BROKER, username=NODE)\n" % board)
    with open(os.path.join(folder, "secrets.py"), "w") as f:
        f.write("MQTT_PASSWORD = %r\n" % users[node])
    return users, house_acl() + controller_acl(VIEWER)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=0, help="stop after this long (default: until Ctrl-C)")
    parser.add_argument("--board", default="unix", help="board file in boards/ (default: unix)")
    parser.add_argument("--host", default=os.environ.get("MQTT_HOST"), help="use this broker, start none")
    parser.add_argument("--port", type=int, default=None, help="its port (default: MQTT_PORT, else 1883)")
    parser.add_argument(
        "--acl", action="store_true", help="the private broker checks passwords and the house ACL (see the README)"
    )
    args = parser.parse_args(argv)
    if args.port is None and os.environ.get("MQTT_PORT"):
        args.port = int(os.environ["MQTT_PORT"])
    if args.port is not None and args.host is None:
        args.host = "127.0.0.1"
    if args.host is not None and args.acl:
        parser.error("--acl sets up the private broker; with --host the broker's own settings apply")
    return args


def stop_on_signals():
    # Set explicitly: a job started in the background from a script inherits
    # SIGINT ignored, and Python then installs no handler of its own.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))


def record_address(host, port, login, broker):
    os.makedirs(os.path.dirname(ADDRESS_FILE), exist_ok=True)
    record = {"host": host, "port": port, "pid": os.getpid(), "broker_pid": broker.proc.pid if broker else None}
    if login:
        record["username"], record["password"] = login
    with open(ADDRESS_FILE, "w") as f:
        json.dump(record, f)


def forget_address():
    try:
        with open(ADDRESS_FILE) as f:
            if json.load(f).get("pid") != os.getpid():
                return  # another run's
        os.remove(ADDRESS_FILE)
    except (OSError, ValueError):
        pass


def viewer(host, port, login):
    import paho.mqtt.client as mqtt

    subscriber = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    if login:
        subscriber.username_pw_set(*login)

    def on_message(client, userdata, message):
        payload = message.payload.decode(errors="replace")
        if message.topic.startswith("homeassistant/"):
            payload = "(discovery config, %d bytes)" % len(message.payload)
        print("%s  %-44s %s" % (time.strftime("%H:%M:%S"), message.topic, payload), flush=True)

    def on_connect(client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            print("viewer: the broker at %s:%d refused it: %s" % (host, port, reason_code), flush=True)
        else:
            client.subscribe([("house/#", 1), ("homeassistant/#", 1)])

    subscriber.on_message = on_message
    subscriber.on_connect = on_connect
    subscriber.connect(host, port)
    subscriber.loop_start()
    return subscriber


def supervise(args, broker, host, port, extra_path):
    """Runs the node until --seconds, restarting it after a reset as a board
    would; returns the exit status."""
    board = "run_board" if extra_path else args.board
    node = start_node(host, port, board, extra_path)
    print("node running on the Unix port (pid %d), board %s; Ctrl-C stops" % (node.pid, args.board), flush=True)
    deadline = time.monotonic() + args.seconds if args.seconds else None
    try:
        while deadline is None or time.monotonic() < deadline:
            time.sleep(0.2)
            if broker is not None and not broker.running():
                print("mosquitto exited (log: %s): stopping" % broker.log_path, flush=True)
                return 1
            if node.poll() is None:
                continue
            if node.returncode not in RESETS:
                print("node exited with code %d" % node.returncode, flush=True)
                return node.returncode or 1
            print("node reset (%s): starting it again, as a board would" % RESETS[node.returncode], flush=True)
            node = start_node(host, port, board, extra_path)
        return 0
    finally:
        if node.poll() is None:
            node.send_signal(signal.SIGTERM)
            try:
                node.wait(timeout=5)
            except subprocess.TimeoutExpired:
                node.kill()
                node.wait()


def main(argv=None):
    args = parse_args(argv)
    stop_on_signals()
    broker = subscriber = None
    folder = tempfile.mkdtemp(prefix="run-local-") if args.acl else None
    try:
        login = None
        if args.host is not None:
            host, port = args.host, args.port or 1883
            print("broker %s:%d (not started here)" % (host, port), flush=True)
        else:
            users, acl = access_controlled(args.board, folder) if args.acl else (None, None)
            broker = Mosquitto(users=users, acl=acl).start()
            host, port = broker.address
            login = (VIEWER, users[VIEWER]) if users else None
            print("mosquitto on %s:%d (log: %s)" % (host, port, broker.log_path), flush=True)
            if login:
                print("access control on: users %s; the viewer is %r" % (", ".join(sorted(users)), VIEWER), flush=True)
        record_address(host, port, login, broker)
        subscriber = viewer(host, port, login)
        return supervise(args, broker, host, port, folder)
    except KeyboardInterrupt:
        return 0
    finally:
        forget_address()
        if subscriber is not None:
            subscriber.loop_stop()
            subscriber.disconnect()
        if broker is not None:
            broker.close()
        if folder is not None:
            for name in os.listdir(folder):
                os.remove(os.path.join(folder, name))
            os.rmdir(folder)


if __name__ == "__main__":
    sys.exit(main())
