"""`make monitor`: what the house's nodes publish, live. Subscribes to
house/# and homeassistant/# and shows one row per sensor (room, sensor,
value, unit from the discovery configs, age; stale when no reading came for
3 typical intervals or --stale-s) and one row per node (availability and
diagnostics: uptime, free heap, RSSI, reconnects, dropped readings).

    python tools/monitor.py [--host H] [--port P] [--seconds S] [--plain | --json] [--stale-s S]

--plain prints one line per message, --json one JSON object per line (for
scripts); the default is a dashboard that redraws in place. The broker is
127.0.0.1:1883 unless --host/--port or MQTT_HOST/MQTT_PORT say otherwise.
"""

import argparse
import calendar
import json
import os
import queue
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)  # run as a script: tools.run_local says where `make run`'s broker is

DISCOVERY_PREFIX = "homeassistant"
STALE_FACTOR = 3  # stale after this many typical intervals without a reading
DEFAULT_STALE_S = 180  # before the interval is known: 3 x a board's default period_s (60)
BURST_S = 0.5  # shorter gaps are a buffer draining after a reconnect, not the period
INTERVALS_KEPT = 9
DIAGNOSTIC_FIELDS = ("uptime_s", "free_heap", "rssi", "reconnects", "dropped", "buffered", "sensor_errors", "published")


# ---- the model: messages in, rows out -----------------------------------------


class Reading:
    def __init__(self, room, sensor, topic):
        self.room = room
        self.sensor = sensor
        self.topic = topic
        self.value = None
        self.received = None  # wall-clock time of the last message
        self.taken = None  # the node's own time of the reading (JSON payloads), if it sent one
        self.intervals = []
        self.count = 0

    def interval_s(self):
        """The typical gap between readings: the median of the recent ones
        that are not a buffer draining."""
        return statistics.median(self.intervals) if self.intervals else None


class NodeState:
    def __init__(self, room, node):
        self.room = room
        self.node = node
        self.status = None  # "online" / "offline" / None (not heard)
        self.diagnostics = {}
        self.diagnostics_at = None


class House:
    """The state of the house as the broker reports it. ingest() takes each
    (topic, payload) and returns what the message was (an event dict, for
    the one-line modes); reading_rows() and node_rows() are the tables."""

    def __init__(self, prefix="house", stale_s=None):
        self.prefix = prefix
        self.stale_s = stale_s
        self.readings = {}  # state topic -> Reading
        self.nodes = {}  # (room, node) -> NodeState
        self.sensor_info = {}  # state topic -> {"unit", "node", "status_topic", "config_topic"} from discovery
        self.models = {}  # node name -> model, from discovery
        self.messages = 0

    # -- in

    def ingest(self, topic, payload, retained=False, now=None):
        now = time.time() if now is None else now
        self.messages += 1
        text = payload.decode("utf-8", "replace") if isinstance(payload, (bytes, bytearray)) else str(payload)
        levels = topic.split("/")
        if levels[0] == DISCOVERY_PREFIX:
            return self._discovery(topic, levels, text)
        if levels[0] != self.prefix:
            return {"kind": "other", "topic": topic, "payload": text}
        if len(levels) == 3:
            return self._reading(topic, levels[1], levels[2], text, retained, now)
        if len(levels) == 4 and levels[3] == "status":
            node = self._node(levels[1], levels[2])
            node.status = text
            return {"kind": "status", "room": node.room, "node": node.node, "status": text}
        if len(levels) == 4 and levels[3] == "diagnostics":
            node = self._node(levels[1], levels[2])
            try:
                report = json.loads(text)
            except ValueError:
                report = None
            if not isinstance(report, dict):
                return {"kind": "other", "topic": topic, "payload": text}
            node.diagnostics = report
            node.diagnostics_at = now
            return dict({"kind": "diagnostics", "room": node.room, "node": node.node}, **report)
        if len(levels) == 5 and levels[3] == "set":
            return {"kind": "command", "room": levels[1], "node": levels[2], "key": levels[4], "value": text}
        return {"kind": "other", "topic": topic, "payload": text}

    def _node(self, room, node):
        key = (room, node)
        if key not in self.nodes:
            self.nodes[key] = NodeState(room, node)
        return self.nodes[key]

    def _reading(self, topic, room, sensor, text, retained, now):
        reading = self.readings.get(topic)
        if reading is None:
            reading = self.readings[topic] = Reading(room, sensor, topic)
        value, taken = parse_value(text)
        if reading.received is not None and not retained:
            gap = now - reading.received
            if gap >= BURST_S:
                reading.intervals = (reading.intervals + [gap])[-INTERVALS_KEPT:]
        reading.value = value
        reading.received = now
        reading.taken = taken
        reading.count += 1
        info = self.sensor_info.get(topic, {})
        event = {"kind": "reading", "room": room, "sensor": sensor, "value": value, "unit": info.get("unit", "")}
        if taken is not None:
            event["taken"] = taken
        if retained:
            event["retained"] = True
        return event

    def _discovery(self, topic, levels, text):
        # homeassistant/sensor/<node>/<sensor>/config; an empty payload removes it.
        if len(levels) != 5 or levels[4] != "config":
            return {"kind": "other", "topic": topic, "payload": text}
        if not text:
            for state_topic, info in list(self.sensor_info.items()):
                if info.get("config_topic") == topic:
                    del self.sensor_info[state_topic]
            return {"kind": "discovery-removed", "node": levels[2], "sensor": levels[3]}
        try:
            config = json.loads(text)
        except ValueError:
            return {"kind": "other", "topic": topic, "payload": text}
        if not isinstance(config, dict):
            return {"kind": "other", "topic": topic, "payload": text}
        state_topic = config.get("stat_t") or config.get("state_topic")
        device = config.get("dev") or config.get("device") or {}
        unit = config.get("unit_of_meas") or config.get("unit_of_measurement") or ""
        node = device.get("name") or levels[2]
        if state_topic:
            self.sensor_info[state_topic] = {
                "unit": unit,
                "node": node,
                "status_topic": config.get("avty_t") or config.get("availability_topic"),
                "config_topic": topic,
            }
        model = device.get("mdl") or device.get("model")
        if model:
            self.models[node] = model
        state_levels = state_topic.split("/") if isinstance(state_topic, str) else []
        room = state_levels[1] if len(state_levels) == 3 else ""
        return {
            "kind": "discovery",
            "room": room,
            "node": node,
            "sensor": levels[3],
            "state_topic": state_topic,
            "unit": unit,
        }

    # -- out

    def threshold_s(self, reading):
        """How old a reading may get before it is stale."""
        if self.stale_s:
            return self.stale_s
        interval = reading.interval_s()
        return STALE_FACTOR * interval if interval else DEFAULT_STALE_S

    def _status_of(self, topic):
        info = self.sensor_info.get(topic, {})
        status_topic = info.get("status_topic")
        if not status_topic:
            return None
        levels = status_topic.split("/")
        node = self.nodes.get((levels[1], levels[2])) if len(levels) == 4 else None
        return node.status if node else None

    def reading_rows(self, now=None):
        """One dict per sensor: room, sensor, value, unit, node, age_s,
        interval_s, state ("ok", "stale", or "offline" when its node said so)."""
        now = time.time() if now is None else now
        rows = []
        for topic in sorted(self.readings, key=lambda t: (self.readings[t].room, self.readings[t].sensor)):
            r = self.readings[topic]
            info = self.sensor_info.get(topic, {})
            since = r.taken if r.taken is not None else r.received
            age = max(0.0, now - since)
            state = "stale" if age > self.threshold_s(r) else "ok"
            if self._status_of(topic) == "offline":
                state = "offline"
            rows.append(
                {
                    "room": r.room,
                    "sensor": r.sensor,
                    "value": r.value,
                    "unit": info.get("unit", ""),
                    "node": info.get("node", ""),
                    "age_s": age,
                    "interval_s": r.interval_s(),
                    "state": state,
                    "count": r.count,
                }
            )
        return rows

    def node_rows(self, now=None):
        """One dict per node: room, node, status, diagnostics age and fields."""
        now = time.time() if now is None else now
        rows = []
        for key in sorted(self.nodes):
            n = self.nodes[key]
            row = {"room": n.room, "node": n.node, "status": n.status or "?", "model": self.models.get(n.node, "")}
            row["diagnostics_age_s"] = now - n.diagnostics_at if n.diagnostics_at is not None else None
            for field in DIAGNOSTIC_FIELDS:
                row[field] = n.diagnostics.get(field)
            rows.append(row)
        return rows


def parse_value(text):
    """(value as text, taken time or None). Plain payloads are the value;
    JSON ones ({"v": 21.5, "t": "2026-11-23T08:00:00Z"}) carry both."""
    if text.startswith("{"):
        try:
            obj = json.loads(text)
        except ValueError:
            return text, None
        if isinstance(obj, dict) and "v" in obj:
            return str(obj["v"]), parse_utc(obj.get("t"))
    return text, None


def parse_utc(text):
    if not isinstance(text, str):
        return None
    try:
        return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))
    except ValueError:
        return None


# ---- formatting ------------------------------------------------------------------


def age_text(seconds):
    if seconds is None:
        return "-"
    seconds = int(seconds)
    if seconds < 60:
        return "%ds" % seconds
    if seconds < 3600:
        return "%dm%02ds" % (seconds // 60, seconds % 60)
    return "%dh%02dm" % (seconds // 3600, seconds % 3600 // 60)


def heap_text(value):
    if value is None:
        return "-"
    if value < 0:
        return "n/a"  # CPython reports no fixed heap
    return "%.1f KB" % (value / 1024) if value < 1048576 else "%.1f MB" % (value / 1048576)


def number_text(value):
    return "-" if value is None else str(value)


def event_line(event, stamp):
    """One human line per message, for --plain."""
    kind = event["kind"]
    clock = time.strftime("%H:%M:%S", time.localtime(stamp))
    if kind == "reading":
        unit = (" " + event["unit"]) if event["unit"] else ""
        note = " (retained)" if event.get("retained") else ""
        return "%s  %-12s %-18s %s%s%s" % (clock, event["room"], event["sensor"], event["value"], unit, note)
    if kind == "status":
        return "%s  %-12s %-18s node %s" % (clock, event["room"], event["node"], event["status"])
    if kind == "diagnostics":
        return "%s  %-12s %-18s up %s, heap %s, rssi %s, reconnects %s, dropped %s, published %s" % (
            clock,
            event["room"],
            event["node"],
            age_text(event.get("uptime_s")),
            heap_text(event.get("free_heap")),
            number_text(event.get("rssi")),
            number_text(event.get("reconnects")),
            number_text(event.get("dropped")),
            number_text(event.get("published")),
        )
    if kind == "discovery":
        unit = (" in " + event["unit"]) if event["unit"] else ""
        return "%s  %-12s %-18s announces %s%s" % (clock, event["room"], event["node"], event["sensor"], unit)
    if kind == "command":
        return "%s  %-12s %-18s command %s = %s" % (clock, event["room"], event["node"], event["key"], event["value"])
    if kind == "discovery-removed":
        return "%s  %-12s %-18s withdraws %s" % (clock, "", event["node"], event["sensor"])
    return "%s  %s %s" % (clock, event["topic"], event["payload"][:80])


def event_json(event, stamp, topic):
    return json.dumps(dict({"time": round(stamp, 3), "topic": topic}, **event), ensure_ascii=False)


def render(house, now=None, title=None):
    """The dashboard: a rich renderable with the two tables."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    now = time.time() if now is None else now
    readings = Table(title=title or "house", title_justify="left", expand=False)
    for name, justify in (("room", "left"), ("sensor", "left"), ("value", "right"), ("unit", "left")):
        readings.add_column(name, justify=justify)
    readings.add_column("age", justify="right")
    readings.add_column("state")
    styles = {"ok": "green", "stale": "yellow", "offline": "red"}
    for row in house.reading_rows(now):
        readings.add_row(
            row["room"],
            row["sensor"],
            row["value"],
            row["unit"],
            age_text(row["age_s"]),
            Text(row["state"], style=styles[row["state"]]),
        )
    nodes = Table(title="nodes", title_justify="left")
    for name in ("room", "node", "status", "up", "heap", "rssi", "recon", "drop", "pub", "diag"):
        nodes.add_column(name, justify="left" if name in ("room", "node", "status") else "right")
    for row in house.node_rows(now):
        status_style = {"online": "green", "offline": "red"}.get(row["status"], "yellow")
        nodes.add_row(
            row["room"],
            row["node"],
            Text(row["status"], style=status_style),
            age_text(row["uptime_s"]),
            heap_text(row["free_heap"]),
            number_text(row["rssi"]),
            number_text(row["reconnects"]),
            number_text(row["dropped"]),
            number_text(row["published"]),
            age_text(row["diagnostics_age_s"]),
        )
    return Group(readings, nodes)


# ---- the subscriber --------------------------------------------------------------


class Subscriber:
    """paho in its own thread, handing (topic, payload, retained, time) to
    a queue, so the House is only touched by the caller's thread."""

    def __init__(self, host, port, prefix="house", login=None):
        import paho.mqtt.client as mqtt

        self.host, self.port = host, port
        self.messages = queue.Queue()
        self.connected = False
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        if login:
            self.client.username_pw_set(*login)
        self.topics = [(prefix + "/#", 1), (DISCOVERY_PREFIX + "/#", 1)]
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        self.connected = not reason_code.is_failure
        if self.connected:
            client.subscribe(self.topics)  # again after every reconnect: the session is clean

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        self.connected = False

    def _on_message(self, client, userdata, message):
        self.messages.put((message.topic, message.payload, bool(message.retain), time.time()))

    def start(self):
        try:
            self.client.connect(self.host, self.port, keepalive=30)
        except OSError as e:
            raise SystemExit(
                "monitor: cannot reach the broker at %s:%d: %s (is it running? `make run` starts a private one "
                "and prints its port; set --port or MQTT_PORT)" % (self.host, self.port, e)
            )
        self.client.loop_start()
        return self

    def stop(self):
        self.client.loop_stop()
        self.client.disconnect()

    def drain(self, until):
        """Yields queued messages until the monotonic time `until`."""
        while True:
            left = until - time.monotonic()
            if left <= 0:
                return
            try:
                yield self.messages.get(timeout=min(left, 0.25))
            except queue.Empty:
                yield None


def collect(host, port, seconds, house=None, prefix="house"):
    """Runs the subscriber for `seconds` and returns the House it filled."""
    house = house or House(prefix)
    subscriber = Subscriber(host, port, prefix).start()
    try:
        for item in subscriber.drain(time.monotonic() + seconds):
            if item is not None:
                topic, payload, retained, stamp = item
                house.ingest(topic, payload, retained, stamp)
    finally:
        subscriber.stop()
    return house


def run(args, out=None):
    out = out or sys.stdout
    house = House(args.prefix, args.stale_s)
    login = (args.username, args.password) if args.username else None
    subscriber = Subscriber(args.host, args.port, args.prefix, login).start()
    deadline = time.monotonic() + args.seconds if args.seconds else float("inf")
    live = None
    if not (args.plain or args.json):
        from rich.console import Console
        from rich.live import Live

        console = Console(file=out)
        live = Live(render(house), console=console, refresh_per_second=2, auto_refresh=False)
        live.start()
    next_draw = 0.0
    try:
        # A deadline of "forever" is a day at a time: every loop here is bounded.
        while time.monotonic() < deadline:
            for item in subscriber.drain(min(deadline, time.monotonic() + 86400)):
                if item is not None:
                    topic, payload, retained, stamp = item
                    event = house.ingest(topic, payload, retained, stamp)
                    if args.json:
                        out.write(event_json(event, stamp, topic) + "\n")
                        out.flush()
                    elif args.plain:
                        out.write(event_line(event, stamp) + "\n")
                        out.flush()
                if live is not None and time.monotonic() >= next_draw:
                    state = "connected" if subscriber.connected else "reconnecting"
                    title = "house: %s:%d %s, %d messages" % (args.host, args.port, state, house.messages)
                    live.update(render(house, title=title), refresh=True)
                    next_draw = time.monotonic() + 0.5
    except KeyboardInterrupt:
        pass
    finally:
        if live is not None:
            live.update(render(house, title="house: %s:%d, %d messages" % (args.host, args.port, house.messages)))
            live.stop()
        subscriber.stop()
    return 0


def parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default=None, help="default: MQTT_HOST, a running `make run`'s broker, or 127.0.0.1")
    p.add_argument("--port", type=int, default=None, help="default: MQTT_PORT, a running `make run`'s, or 1883")
    p.add_argument("--username", default=os.environ.get("MQTT_USERNAME"))
    p.add_argument("--password", default=os.environ.get("MQTT_PASSWORD"))
    p.add_argument("--prefix", default="house", help="the boards' topic prefix (default: house)")
    p.add_argument("--seconds", type=float, default=0, help="stop after this long (default: until Ctrl-C)")
    p.add_argument(
        "--stale-s", type=float, default=None, help="a reading older than this is stale (default: 3 intervals)"
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--plain", action="store_true", help="one human line per message")
    mode.add_argument("--json", action="store_true", help="one JSON object per message and line")
    return p


def running_make_run():
    """What a running `make run` recorded of its broker (tools/run_local.py),
    or None when none runs."""
    from tools.run_local import ADDRESS_FILE

    try:
        with open(ADDRESS_FILE) as f:
            record = json.load(f)
        os.kill(record["pid"], 0)  # still running? (signal 0 only checks)
    except (OSError, ValueError, KeyError):
        return None
    return record


def choose_broker(args):
    """--host/--port, else MQTT_HOST/MQTT_PORT, else a running `make run`'s
    broker (with its viewer's login), else 127.0.0.1:1883."""
    if args.host is None and args.port is None and not os.environ.get("MQTT_HOST") and not os.environ.get("MQTT_PORT"):
        record = running_make_run()
        if record is not None:
            args.host, args.port = record["host"], record["port"]
            if args.username is None and "username" in record:
                args.username, args.password = record["username"], record["password"]
            return args
    if args.host is None:
        args.host = os.environ.get("MQTT_HOST") or "127.0.0.1"
    if args.port is None:
        args.port = int(os.environ.get("MQTT_PORT") or 1883)
    return args


def main(argv=None):
    return run(choose_broker(parser().parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
