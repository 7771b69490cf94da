# The node's commands (<prefix>/<room>/<node>/set/<command>): interval,
# publish-now, reboot; and the reboot itself (asked for by a command or an
# update). node.node loads this module at the first command message and
# keeps it; a node that is never sent one never loads it.
#
# Commands from a flood (queued on a persistent session, or sent by anyone
# who may publish): a reboot is taken once per boot and only after
# reboot_grace_s up; forced readings (publish-now, interval) at most once
# per shortest period. The rest are acknowledged, dropped and counted.

from compat import ticks_add, ticks_diff
from node.node import drop_command, recent

_OFFLINE_ACK_MS = 2000  # how long a clean shutdown waits for its `offline` to be acknowledged


def on_message(node, message):
    """A message on the node's own command topics (OTA's and Home
    Assistant's status are taken before)."""
    if not message.topic.startswith(node.command_prefix):
        return
    key = message.topic[len(node.command_prefix) :]
    if message.retain and key == "reboot":
        # A retained reboot would be obeyed at every connect: a reboot loop.
        node.log("command rejected: retained reboot ignored (publish it without retain)")
        return
    try:
        node.command(key, message.payload)
    except ValueError as e:
        node.log("command rejected: %s" % e)


def command(node, key, value, now):
    """now: ticks_ms() when the command arrived."""
    if key == "interval":
        seconds = parse_seconds(value)
        period = seconds * 1000
        if all(sensor.period_ms == period for sensor in node.sensors):
            # A repeat (Home Assistant's number set again, a queued flood):
            # no log line, report or forced reading for each one.
            drop_command(node, "interval", "the interval is %d s already" % seconds)
            return
        forced = may_force_readings(node, now)
        for sensor in node.sensors:
            sensor.period_ms = period
            if forced:
                sensor.next_start = now  # the new period starts with a reading now
            elif ticks_diff(sensor.next_start, now) > period:
                sensor.next_start = ticks_add(now, period)  # forced lately: within the new period
        node.log("command: interval now %d s" % seconds)
        if node.discovery:
            node._report_due = True  # Home Assistant's interval number reads it from the report
    elif key == "publish-now":
        if not may_force_readings(node, now):
            drop_command(node, "publish-now", "readings were forced less than a period ago")
            return
        for sensor in node.sensors:
            sensor.next_start = now
    elif key == "reboot":
        if node.reset is None:
            raise ValueError("reboot is not available on this board")
        if node.reboot_requested:
            drop_command(node, "reboot", "a reboot is already under way")
            return
        if node.uptime_s < node.reboot_grace_s:
            # Else each boot would take one queued reboot of a flood, ack
            # it and reboot: a storm lasting as long as the queue.
            why = "up %d s, reboots are taken after %d s" % (node.uptime_s, node.reboot_grace_s)
            drop_command(node, "reboot", why)
            return
        node.log("command: reboot")
        node._request_reboot()
    else:
        raise ValueError("unknown command %r (known: interval, publish-now, reboot)" % key)


def may_force_readings(node, now):
    """True, and noted, when readings were not forced within the shortest
    sensor period: a flood of commands forces one reading per period, not
    one per command."""
    shortest = min(sensor.period_ms for sensor in node.sensors)
    if recent(now, node._forced_at, shortest):
        return False
    node._forced_at = now
    return True


def parse_seconds(value):
    try:
        seconds = int(value)
    except ValueError:
        raise ValueError("interval must be whole seconds, got %r" % (value,))
    if not 1 <= seconds <= 86400:
        raise ValueError("interval must be 1 to 86400 s, got %d" % seconds)
    return seconds


def reboot(node):
    # The poll that delivered the command has sent its PUBACK by now.
    node.flush_store()
    publish_offline(node)
    node.client.disconnect()
    node.reset()


def publish_offline(node):
    """Before a clean DISCONNECT (reboot, deep sleep): the broker drops the
    last will on a DISCONNECT, so the node says `offline` itself, or its
    status would read `online` while it is gone."""
    client = node.client
    if not client.connected:
        return  # the will says it, or said it already
    try:
        client.publish(node.status_topic, b"offline", 1, True)
    except (OSError, ValueError) as e:
        node.log("mqtt: offline status not sent: %r" % (e,))
        return
    client.wait_for_acks(_OFFLINE_ACK_MS)
