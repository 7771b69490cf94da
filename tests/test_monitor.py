"""tools/monitor.py: the House model (messages in, rows out) fed by hand, by
a real broker, and by a node on the Unix port; the dashboard's table
content; the --plain and --json modes."""

import calendar
import io
import json
import os
import subprocess
import sys
import threading
import time

import paho.mqtt.client as mqtt
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from tools import monitor  # noqa: E402
from tools.run_local import start_node  # noqa: E402

T0 = 1_800_000_000.0  # a fixed wall-clock time for the model tests

DISCOVERY_TEMPERATURE = json.dumps(
    {
        "name": "temperature",
        "uniq_id": "esp32-hall_temperature",
        "stat_t": "house/hall/temperature",
        "avty_t": "house/hall/esp32-hall/status",
        "unit_of_meas": "°C",
        "dev": {"ids": ["esp32-hall"], "name": "esp32-hall", "mdl": "ESP32 DevKitC", "sa": "hall"},
    }
)
DIAGNOSTICS = {
    "uptime_s": 3725,
    "free_heap": 104448,
    "rssi": -67,
    "reconnects": 2,
    "dropped": 5,
    "buffered": 0,
    "sensor_errors": 0,
    "published": 1234,
}


def hall(house, now=T0):
    house.ingest("house/hall/esp32-hall/status", b"online", True, now)
    house.ingest("homeassistant/sensor/esp32-hall/temperature/config", DISCOVERY_TEMPERATURE.encode(), True, now)


def row(rows, **match):
    found = [r for r in rows if all(r[k] == v for k, v in match.items())]
    assert len(found) == 1, (match, rows)
    return found[0]


# ---- the model -------------------------------------------------------------------


def test_reading_row_has_the_unit_from_discovery_and_its_age():
    house = monitor.House()
    hall(house)
    event = house.ingest("house/hall/temperature", b"21.50", False, T0 + 1)
    assert event == {"kind": "reading", "room": "hall", "sensor": "temperature", "value": "21.50", "unit": "°C"}
    r = row(house.reading_rows(now=T0 + 5), sensor="temperature")
    assert (r["room"], r["value"], r["unit"], r["node"], r["state"]) == ("hall", "21.50", "°C", "esp32-hall", "ok")
    assert r["age_s"] == pytest.approx(4)


def test_reading_is_stale_after_three_typical_intervals():
    house = monitor.House()
    hall(house)
    for k in range(4):
        house.ingest("house/hall/temperature", b"21.5", False, T0 + 30 * k)
    last = T0 + 90
    assert row(house.reading_rows(now=last + 89), sensor="temperature")["state"] == "ok"
    assert row(house.reading_rows(now=last + 91), sensor="temperature")["state"] == "stale"


def test_a_burst_from_the_nodes_buffer_does_not_shorten_the_interval():
    house = monitor.House()
    for t in (0, 30, 60, 90, 90.01, 90.02, 90.03, 90.04, 90.05):
        house.ingest("house/hall/temperature", b"21.5", False, T0 + t)
    assert house.readings["house/hall/temperature"].interval_s() == 30


def test_stale_s_overrides_the_interval():
    house = monitor.House(stale_s=10)
    for k in range(3):
        house.ingest("house/hall/temperature", b"21.5", False, T0 + 60 * k)
    assert row(house.reading_rows(now=T0 + 120 + 11), sensor="temperature")["state"] == "stale"


def test_readings_of_an_offline_node_say_so():
    house = monitor.House()
    hall(house)
    house.ingest("house/hall/temperature", b"21.5", False, T0)
    house.ingest("house/hall/esp32-hall/status", b"offline", True, T0 + 1)
    assert row(house.reading_rows(now=T0 + 2), sensor="temperature")["state"] == "offline"
    assert row(house.node_rows(now=T0 + 2), node="esp32-hall")["status"] == "offline"


def test_node_row_has_the_diagnostics():
    house = monitor.House()
    hall(house)
    event = house.ingest("house/hall/esp32-hall/diagnostics", json.dumps(DIAGNOSTICS).encode(), False, T0 + 10)
    assert event["kind"] == "diagnostics" and event["rssi"] == -67
    r = row(house.node_rows(now=T0 + 12), node="esp32-hall")
    assert r["room"] == "hall" and r["status"] == "online" and r["model"] == "ESP32 DevKitC"
    for field, value in DIAGNOSTICS.items():
        assert r[field] == value
    assert r["diagnostics_age_s"] == pytest.approx(2)


def test_json_payload_value_and_time_taken():
    # PAYLOAD = "json" boards send the time a reading was taken: the age counts from it.
    taken = calendar.timegm((2027, 1, 15, 8, 0, 0, 0, 0, 0))
    house = monitor.House()
    house.ingest("house/hall/temperature", b'{"v":21.50,"t":"2027-01-15T08:00:00Z"}', False, taken + 40)
    r = row(house.reading_rows(now=taken + 50), sensor="temperature")
    assert r["value"] == "21.5"
    assert r["age_s"] == pytest.approx(50)


def test_bad_messages_are_shown_not_fatal():
    house = monitor.House()
    assert house.ingest("house/hall/esp32-hall/diagnostics", b"not json", False, T0)["kind"] == "other"
    assert house.ingest("homeassistant/sensor/x/y/config", b"{", False, T0)["kind"] == "other"
    assert house.ingest("house/hall/esp32-hall/set/interval", b"60", False, T0)["kind"] == "command"
    assert house.ingest("elsewhere/topic", b"\xff\xfe", False, T0)["kind"] == "other"
    assert house.reading_rows(now=T0) == []


# ---- the dashboard and the line modes ----------------------------------------------


def rendered_text(house, now):
    from rich.console import Console

    console = Console(file=io.StringIO(), width=160, color_system=None)
    console.print(monitor.render(house, now=now, title="house"))
    return console.file.getvalue()


def test_dashboard_shows_rows_and_node_diagnostics():
    house = monitor.House()
    hall(house)
    house.ingest("house/hall/temperature", b"21.50", False, T0 + 1)
    house.ingest("house/hall/esp32-hall/diagnostics", json.dumps(DIAGNOSTICS).encode(), False, T0 + 1)
    text = rendered_text(house, T0 + 65)
    line = [x for x in text.splitlines() if "temperature" in x][0]
    assert [c.strip() for c in line.strip("│ ").split("│")] == ["hall", "temperature", "21.50", "°C", "1m04s", "ok"]
    node_line = [x for x in text.splitlines() if "esp32-hall" in x][0]
    cells = [c.strip() for c in node_line.strip("│ ").split("│")]
    assert cells == ["hall", "esp32-hall", "online", "1h02m", "102.0 KB", "-67", "2", "5", "1234", "1m04s"]


def test_plain_and_json_lines():
    house = monitor.House()
    hall(house)
    event = house.ingest("house/hall/temperature", b"21.50", False, T0)
    assert monitor.event_line(event, T0).split()[1:] == ["hall", "temperature", "21.50", "°C"]
    line = json.loads(monitor.event_json(event, T0, "house/hall/temperature"))
    assert line == dict(event, time=T0, topic="house/hall/temperature")


# ---- from a real broker --------------------------------------------------------------


def publisher(port):
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


def publish_hall(client, readings=6, gap_s=0.25):
    client.publish("house/hall/esp32-hall/status", "online", 1, retain=True).wait_for_publish(5)
    client.publish("homeassistant/sensor/esp32-hall/temperature/config", DISCOVERY_TEMPERATURE, 1, retain=True)
    time.sleep(0.5)  # the monitor has subscribed by now
    client.publish("house/hall/esp32-hall/diagnostics", json.dumps(DIAGNOSTICS), 1)
    for k in range(readings):
        client.publish("house/hall/temperature", "%.2f" % (21 + k / 100), 1).wait_for_publish(5)
        time.sleep(gap_s)


def test_subscriber_fills_the_house_from_the_broker(make_broker):
    broker = make_broker()
    client = publisher(broker.port)
    try:
        feeder = threading.Thread(target=publish_hall, args=(client,))
        feeder.start()
        house = monitor.collect("127.0.0.1", broker.port, 3.0)
        feeder.join(timeout=10)
    finally:
        client.loop_stop()
        client.disconnect()
    r = row(house.reading_rows(), sensor="temperature")
    assert (r["room"], r["value"], r["unit"], r["state"], r["count"]) == ("hall", "21.05", "°C", "ok", 6)
    assert r["interval_s"] is None  # 0.25 s gaps are bursts, not a period
    n = row(house.node_rows(), node="esp32-hall")
    assert (n["status"], n["published"], n["reconnects"]) == ("online", 1234, 2)


@pytest.mark.parametrize("mode", ["--plain", "--json", "--dashboard"])
def test_command_line_modes(make_broker, mode):
    broker = make_broker()
    command = [sys.executable, os.path.join(ROOT, "tools", "monitor.py"), "--seconds", "3"]
    env = dict(os.environ, MQTT_PORT=str(broker.port), COLUMNS="150")  # the port from the environment
    monitor_process = subprocess.Popen(
        command + ([] if mode == "--dashboard" else [mode]), stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT
    )
    client = publisher(broker.port)
    try:
        time.sleep(0.5)  # the interpreter starts and subscribes
        publish_hall(client, readings=3, gap_s=0.2)
        out, _ = monitor_process.communicate(timeout=20)
    finally:
        if monitor_process.poll() is None:
            monitor_process.kill()
            monitor_process.wait()
        client.loop_stop()
        client.disconnect()
    assert monitor_process.returncode == 0
    if mode == "--plain":
        lines = [x.split()[1:] for x in out.splitlines()]
        assert ["hall", "esp32-hall", "node", "online"] in lines
        assert ["hall", "temperature", "21.02", "°C"] in lines
        assert ["hall", "esp32-hall", "announces", "temperature", "in", "°C"] in lines
        assert any(x[:4] == ["hall", "esp32-hall", "up", "1h02m,"] for x in lines)
    elif mode == "--json":
        events = [json.loads(x) for x in out.splitlines()]
        readings = [e for e in events if e["kind"] == "reading"]
        assert [e["value"] for e in readings] == ["21.00", "21.01", "21.02"]
        assert {e["unit"] for e in readings} == {"°C"}
        assert readings[0]["topic"] == "house/hall/temperature"
        assert any(e["kind"] == "diagnostics" and e["free_heap"] == 104448 for e in events)
    else:
        final = out[out.rindex("house: 127.0.0.1:%d, 6 messages" % broker.port) :]
        reading = [x for x in final.splitlines() if "temperature" in x][0]
        assert [c.strip() for c in reading.strip("│ ").split("│")][:4] == ["hall", "temperature", "21.02", "°C"]
        node = [x for x in final.splitlines() if "esp32-hall" in x][0]
        assert [c.strip() for c in node.strip("│ ").split("│")][:4] == ["hall", "esp32-hall", "online", "1h02m"]


def test_monitor_shows_a_node_on_the_unix_port(make_broker):
    broker = make_broker()
    node = start_node("127.0.0.1", broker.port, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        house = monitor.collect("127.0.0.1", broker.port, 4.5)
    finally:
        node.terminate()
        node.wait(timeout=5)
    rows = house.reading_rows()
    units = {r["sensor"]: r["unit"] for r in rows}
    assert units == {"temperature": "°C", "humidity": "%", "pressure": "hPa", "illuminance": "lx"}
    for r in rows:
        assert r["room"] == "kitchen" and r["node"] == "unix-node" and r["state"] == "ok"
        float(r["value"])
    # boards/unix.py: temperature and humidity every 2 s, so a second reading came.
    assert row(rows, sensor="temperature")["interval_s"] == pytest.approx(2, abs=0.3)
    n = row(house.node_rows(), node="unix-node")
    assert (n["room"], n["status"], n["model"]) == ("kitchen", "online", "MicroPython Unix port")
