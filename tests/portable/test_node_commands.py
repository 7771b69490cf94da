# Commands to a running node over MQTT (set/interval, set/publish-now,
# set/reboot), against the harness's mosquitto, also under a Pico W heap.
import gc

from mqtt.client import MQTTClient
from node_harness import (
    SENSORS,
    Rebooted,
    expected_payloads,
    finish,
    make_node,
    reading_topic,
    reset,
    room_filter,
    run_until,
    send_command,
    subscriber,
)
from support import broker_address, unique_id

NEEDS_NETWORK = True  # a broker or sockets: not on the 32-bit runtime

# lib/ with the node takes ~69 KB of heap on the 64-bit Unix port (pointers
# twice a board's size): the node runs here under the Pico W's free RAM.
SMALL_HEAP = "pico_w"


# ---- commands --------------------------------------------------------------


def test_interval_command_changes_the_period():
    node, logs = make_node("i", sensors=SENSORS[:2])
    sub, inbox = subscriber("i", room_filter(node))
    temperature = reading_topic(node, "temperature")
    try:
        assert run_until(node, [sub], lambda: inbox.payloads(temperature))
        assert [s.period_ms for s in node.sensors] == [60000, 60000]
        send_command(sub, node, "interval", b"5")
        assert run_until(node, [sub], lambda: logs.having("interval now")), logs.lines
        assert logs.having("command: interval now 5 s")
        assert [s.period_ms for s in node.sensors] == [5000, 5000]
        # The new period starts now: a reading at once.
        assert run_until(node, [sub], lambda: len(inbox.payloads(temperature)) == 2)
        assert inbox.payloads(temperature) == expected_payloads("sim_temperature", 11, 2)
    finally:
        finish(node, [sub])


def test_a_repeated_interval_is_dropped_not_logged_and_reported_each_time():
    # Home Assistant's number set to what it is, or a queued flood of one
    # value: counted, with no log line, report or forced reading for each.
    node, logs = make_node("r", sensors=SENSORS[:1])
    sub, inbox = subscriber("r", room_filter(node))
    temperature = reading_topic(node, "temperature")
    try:
        assert run_until(node, [sub], lambda: inbox.payloads(temperature))
        assert node.sensors[0].period_ms == 60000
        for _ in range(5):
            send_command(sub, node, "interval", b"60")
        assert run_until(node, [sub], lambda: node.commands_dropped == 5), (node.commands_dropped, logs.lines)
        assert not logs.having("interval now"), logs.lines
        assert len(logs.having("command interval dropped")) == 1, logs.lines
        assert len(inbox.payloads(temperature)) == 1  # no reading forced
    finally:
        finish(node, [sub])


def test_bad_interval_is_logged_and_ignored():
    node, logs = make_node("b", sensors=SENSORS[:1])
    sub, inbox = subscriber("b", room_filter(node))
    temperature = reading_topic(node, "temperature")
    try:
        assert run_until(node, [sub], lambda: inbox.payloads(temperature))
        for value, reason in ((b"abc", "whole seconds"), (b"0", "1 to 86400"), (b"86401", "1 to 86400"), (b"", "")):
            before = len(logs.having("command rejected"))
            send_command(sub, node, "interval", value)
            assert run_until(node, [sub], lambda before=before: len(logs.having("command rejected")) > before), (
                logs.lines
            )
            line = logs.having("command rejected")[-1]
            assert "interval" in line and reason in line, line
            periods = [s.period_ms for s in node.sensors]
            assert periods == [60000], periods
        assert node.client.connected
        assert len(inbox.payloads(temperature)) == 1  # no reading was forced by a rejected command
    finally:
        finish(node, [sub])


def test_unknown_command_rejected_with_a_log_line():
    node, logs = make_node("u", sensors=SENSORS[:1])
    sub, inbox = subscriber("u", room_filter(node))
    temperature = reading_topic(node, "temperature")
    try:
        assert run_until(node, [sub], lambda: inbox.payloads(temperature))
        send_command(sub, node, "fly", b"1")
        assert run_until(node, [sub], lambda: logs.having("command rejected")), logs.lines
        line = logs.having("command rejected")[-1]
        assert "unknown command 'fly'" in line, line
        send_command(sub, node, "reboot", b"1")  # no reset function given: refused, not a crash
        assert run_until(node, [sub], lambda: logs.having("reboot is not available")), logs.lines
        # Still running and publishing.
        send_command(sub, node, "publish-now", b"")
        assert run_until(node, [sub], lambda: len(inbox.payloads(temperature)) == 2), logs.lines
        assert node.client.connected
    finally:
        finish(node, [sub])


def test_retained_reboot_command_does_not_reboot_at_every_connect():
    # A `set/reboot` published with retain (by mistake, or by a dashboard
    # button with retain on) is delivered again at every subscribe: obeying
    # it would reboot the board in a loop that only clearing the broker ends.
    node, logs = make_node("t", sensors=SENSORS[:1], reset=reset)
    node.reboot_grace_s = 0  # else the just-booted node drops any reboot
    host, port = broker_address()
    commander = MQTTClient(unique_id("cmd"), host, port, inflight_max=2, max_packet=128, tx_size=128, rx_size=256)
    commander.connect()
    rebooted = False
    try:
        commander.publish(node.command_prefix + "reboot", b"1", 1, True)
        assert commander.wait_for_acks(2000)
        try:
            assert run_until(node, [], lambda: node.client.connected and node.published == 1)
            run_until(node, [], lambda: False, 500)
        except Rebooted:
            rebooted = True
        assert not rebooted, "rebooted on a retained command: %r" % logs.lines
    finally:
        commander.publish(node.command_prefix + "reboot", b"", 1, True)  # clear both
        commander.publish(node.status_topic, b"", 1, True)
        commander.wait_for_acks(2000)
        commander.disconnect()
        node.client.disconnect()


def test_live_reboot_command_reboots():
    node, logs = make_node("l", sensors=SENSORS[:1], reset=reset)
    node.reboot_grace_s = 0  # else the just-booted node drops any reboot
    sub, inbox = subscriber("l", room_filter(node))
    try:
        assert run_until(node, [sub], lambda: node.client.connected and node.published == 1)
        send_command(sub, node, "reboot", b"")
        try:
            run_until(node, [sub], lambda: False, 3000)
        except Rebooted:
            assert logs.having("command: reboot")
            assert not node.client.connected  # a clean DISCONNECT first: no last will
            return
        raise AssertionError("no reboot: %r" % logs.lines)
    finally:
        finish(node, [sub])


def test_publish_now_command_triggers_readings():
    node, logs = make_node("p", sensors=SENSORS[:2])
    sub, inbox = subscriber("p", room_filter(node))
    temperature = reading_topic(node, "temperature")
    humidity = reading_topic(node, "humidity")
    try:
        assert run_until(node, [sub], lambda: inbox.payloads(temperature) and inbox.payloads(humidity))
        run_until(node, [sub], lambda: False, 300)  # the period is 60 s: nothing more comes
        assert len(inbox.payloads(temperature)) == 1 and len(inbox.payloads(humidity)) == 1
        send_command(sub, node, "publish-now", b"")
        assert run_until(
            node, [sub], lambda: len(inbox.payloads(temperature)) == 2 and len(inbox.payloads(humidity)) == 2
        )
        assert inbox.payloads(temperature) == expected_payloads("sim_temperature", 11, 2)
        assert inbox.payloads(humidity) == expected_payloads("sim_humidity", 12, 2)
        assert [s.period_ms for s in node.sensors] == [60000, 60000]  # the period itself is unchanged
    finally:
        finish(node, [sub])


def test_reboot_command_is_acknowledged_before_the_reboot():
    # QoS 1 on a persistent session: rebooting before the PUBACK is sent would
    # have the broker deliver the command again after the restart, and the
    # board would reboot in a loop.
    room, name = unique_id("roomb"), unique_id("nodeb")
    host, port = broker_address()
    persistent = {"host": host, "port": port, "keepalive_s": 30, "clean_session": False}
    node, logs = make_node("b", sensors=SENSORS[:1], reset=reset, ROOM=room, NODE=name, BROKER=persistent)
    node.reboot_grace_s = 0  # else the just-booted node drops any reboot
    sub, inbox = subscriber("b", room_filter(node))
    again = None
    try:
        assert run_until(node, [sub], lambda: node.client.connected and node.published == 1)
        send_command(sub, node, "reboot", b"")
        try:
            run_until(node, [sub], lambda: False, 3000)
            raise AssertionError("no reboot: %r" % logs.lines)
        except Rebooted:
            pass
        # After the reset: the same node, the same session (and the old one's heap back).
        node = None
        gc.collect()
        again, logs_again = make_node("b", sensors=SENSORS[:1], reset=reset, ROOM=room, NODE=name, BROKER=persistent)
        again.reboot_grace_s = 0  # so that a command delivered again would reboot it
        try:
            assert run_until(again, [sub], lambda: again.client.connected and again.published == 1)
            run_until(again, [sub], lambda: False, 500)
        except Rebooted:
            raise AssertionError("the reboot command came back after the reboot: %r" % logs_again.lines)
        assert not logs_again.having("command: reboot"), logs_again.lines
    finally:
        last = again or node
        if last is not None:
            finish(last, [sub])
        else:
            sub.disconnect()
        # Leave no session behind on the shared broker.
        forget = MQTTClient(name, host, port, clean_session=True, max_packet=128, tx_size=128, rx_size=256)
        forget.connect()
        forget.disconnect()


def test_a_command_flood_reboots_at_most_once_and_readings_go_on():
    # Anyone who may publish can send 1000 reboots a second, and a persistent
    # session queues them: each boot taking one would be a reboot storm.
    fast = [{"driver": "sim_temperature", "period_s": 1, "qos": 1, "params": {"seed": 11}}]
    node, logs = make_node("f", sensors=fast, reset=reset)
    temperature = reading_topic(node, "temperature")
    sub, inbox = subscriber("f", temperature)  # not the room: 300 commands would fill a Pico's heap
    try:
        assert run_until(node, [sub], lambda: inbox.payloads(temperature))
        for _ in range(150):  # the node just booted: every reboot is dropped
            send_command(sub, node, "reboot", b"")
            send_command(sub, node, "publish-now", b"")
        assert run_until(node, [sub], lambda: node.commands_dropped >= 299, 10000), (node.commands_dropped, logs.lines)
        assert node.commands_dropped == 299  # one publish-now taken; no reboot
        assert len(logs.having("dropped")) == 1, logs.lines  # said once, then counted
        before = len(inbox.payloads(temperature))
        run_until(node, [sub], lambda: False, 2500)
        # The readings go on at their period: no stall, and no burst from 150 publish-nows.
        assert 2 <= len(inbox.payloads(temperature)) - before <= 4, inbox.payloads(temperature)
        node.reboot_grace_s = 0  # as if up for longer than the grace
        for _ in range(20):
            send_command(sub, node, "reboot", b"")
        try:
            run_until(node, [sub], lambda: False, 3000)
        except Rebooted:
            assert len(logs.having("command: reboot")) == 1, logs.lines
            return
        raise AssertionError("no reboot after the grace: %r" % logs.lines)
    finally:
        finish(node, [sub])


def test_a_command_whose_handling_fails_is_dropped_and_the_node_goes_on():
    # A MemoryError loading node.commands on a fragmented heap (made here
    # once): counted and logged, not a node failure; the next command works.
    import node.node as node_module

    node, logs = make_node("f", sensors=SENSORS[:1])
    sub, inbox = subscriber("f", room_filter(node))
    temperature = reading_topic(node, "temperature")
    load_commands = node_module._commands
    failures = []

    def failing_once():
        if not failures:
            failures.append(1)
            raise MemoryError("memory allocation failed, allocating 1536 bytes")
        return load_commands()

    node_module._commands = failing_once
    try:
        assert run_until(node, [sub], lambda: inbox.payloads(temperature))
        send_command(sub, node, "interval", b"5")
        assert run_until(node, [sub], lambda: node.commands_dropped == 1), logs.lines
        assert logs.having("dropped: MemoryError"), logs.lines
        assert node.client.connected and node.client.disconnects == 0
        send_command(sub, node, "interval", b"5")
        assert run_until(node, [sub], lambda: logs.having("command: interval now 5 s")), logs.lines
        assert node.sensors[0].period_ms == 5000
    finally:
        node_module._commands = load_commands
        finish(node, [sub])
