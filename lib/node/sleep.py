# A battery board's wake (DEEP_SLEEP_S set): connect, announce, read every
# sensor once, publish, report, wait for the acks, say `offline`, sleep.
# node.node loads it only on such a board (Node.cycle_and_sleep), so an
# always-on node never holds this code.

from compat import ticks_add, ticks_diff
from node import node as host  # its clock and sleep, which tests may replace
from node.commands import publish_offline


def cycle_and_sleep(node, deepsleep, ack_timeout_ms, connect_timeout_ms):
    client = node.client
    deadline = ticks_add(host.ticks_ms(), connect_timeout_ms)
    while not client.connected and ticks_diff(deadline, host.ticks_ms()) > 0:
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
        wait = node._sensors_due(host.ticks_ms())
        if all(sensor.read_at is None for sensor in node.sensors):
            break
        host.sleep_ms(wait if wait < 100 else 100)
    node.drain_ring()
    if node._report_due or node.config["DIAGNOSTICS_S"]:
        node._report_due = False
        node._publish_diagnostics()  # once per wake
    if not client.wait_for_acks(ack_timeout_ms):
        node.log("deep sleep: %d messages unacknowledged" % client.session.inflight_count())
    node.flush_store()  # unacknowledged readings are replayed after the wake-up
    publish_offline(node)  # asleep, it is not connected: Home Assistant's status sensor says so
    client.disconnect()
    deepsleep(node.config["DEEP_SLEEP_S"] * 1000)
