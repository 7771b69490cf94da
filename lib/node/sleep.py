# A battery board's wake (DEEP_SLEEP_S set): connect, announce, read every
# sensor once, publish, report, wait for the acks, say `offline`, sleep.
# node.node loads it only on such a board (Node.cycle_and_sleep), so an
# always-on node never holds this code.

import sys

from compat import ticks_add, ticks_diff
from node import node as host  # its clock and sleep, which tests may replace
from node.commands import publish_offline

# The longest wait between two feeds of the watchdog within a wake.
_FEED_EVERY_MS = 1000
# A Pico's lightsleep refuses 2**32 us (71.6 min) or more ("sleep too long").
_RP2_LONGEST_STEP_MS = 3600000


def _nothing():
    pass


def cycle_and_sleep(node, deepsleep, ack_timeout_ms, connect_timeout_ms, feed=None):
    """feed: the watchdog's, called at least every second of the wake."""
    feed = feed or _nothing
    client = node.client
    deadline = ticks_add(host.ticks_ms(), connect_timeout_ms)
    while not client.connected and ticks_diff(deadline, host.ticks_ms()) > 0:
        feed()
        if node.wifi is None or node.wifi.poll(host.ticks_ms()):
            client.poll(100)
        else:
            host.sleep_ms(100)
    now = host.ticks_ms()
    if node._announce_due and client.connected:
        node._announce(now)
    for sensor in node.sensors:
        sensor.next_start = now
    while True:
        feed()
        wait = node._sensors_due(host.ticks_ms())
        if all(sensor.read_at is None for sensor in node.sensors):
            break
        host.sleep_ms(wait if wait < 100 else 100)
    node.drain_ring()
    if node._report_due or node.config["DIAGNOSTICS_S"]:
        node._report_due = False
        node._publish_diagnostics()  # once per wake
    if not _send_backlog(node, client, ack_timeout_ms, feed):
        node.log("deep sleep: %d messages unacknowledged" % client.session.inflight_count())
    node.flush_store()  # unacknowledged readings are replayed after the wake-up
    publish_offline(node)  # asleep, it is not connected: Home Assistant's status sensor says so
    client.disconnect()
    deepsleep(node.config["DEEP_SLEEP_S"] * 1000)


def _send_backlog(node, client, timeout_ms, feed):
    """Send what the store and the ring hold, a window of in-flight
    messages at a time, and wait for the acks, within timeout_ms: a wake
    that sent one window would leave the rest of a backlog behind its own
    new readings. True once nothing is in flight (what is left, if the link
    went, waits for the next wake)."""
    deadline = ticks_add(host.ticks_ms(), timeout_ms)
    while True:
        feed()
        node.drain_ring()
        if not client.session.inflight_count():
            return True
        left = ticks_diff(deadline, host.ticks_ms())
        if left <= 0:
            return False
        client.wait_for_acks(left if left < _FEED_EVERY_MS else _FEED_EVERY_MS)


def board_deepsleep(machine, feed=None, watchdog_ms=0, platform=sys.platform):
    """deepsleep(ms) for this board. A Pico's machine.deepsleep is a
    lightsleep and then a reset: its watchdog counts on through the
    lightsleep (an expiry there hangs an RP2040 until it is power-cycled,
    on firmware before 1.26), and a lightsleep of 71.6 min or more is
    refused. There the node sleeps in steps shorter than both, feeding the
    watchdog between them, then resets as deepsleep would."""
    if platform != "rp2":
        return machine.deepsleep
    step = watchdog_ms // 2 if feed is not None and watchdog_ms else _RP2_LONGEST_STEP_MS

    def deepsleep(ms):
        while True:
            if feed is not None:
                feed()
            if ms <= step:
                break
            machine.lightsleep(step)
            ms -= step
        machine.lightsleep(ms)
        machine.reset()

    return deepsleep
