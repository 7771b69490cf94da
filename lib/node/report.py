# The node's diagnostics report (<prefix>/<room>/<node>/diagnostics),
# retained JSON: every DIAGNOSTICS_S, after an announce, once per wake on a
# battery board. node.node loads this module for each report and forgets it
# after: between reports its code takes no RAM.

import gc
import json

from compat import mem_free


def publish(node):
    client = node.client
    gc.collect()  # so "free_heap" is what is free, not what awaits collection
    store = node.store
    report = {
        "uptime_s": node.uptime_s,
        "free_heap": mem_free(),
        "rssi": node.wifi.rssi() if node.wifi else 0,
        "reconnects": client.connects - 1 if client.connects else 0,
        "dropped": node.ring.dropped + (store.dropped if store else 0),
        "buffered": node.ring.count + (store.count if store else 0),
        "store_errors": node.store_errors,
        "sensor_errors": node.sensor_errors,
        "published": node.published,
        # QoS 2 messages the broker completed with PUBACK: it serves QoS 2 as QoS 1.
        "qos2_downgraded": client.session.qos2_downgraded,
        "commands_dropped": node.commands_dropped,
        # The shortest sensor period: what the `interval` command sets for all.
        "interval_s": min(sensor.period_ms for sensor in node.sensors) // 1000,
    }
    # Retained: Home Assistant's diagnostic entities subscribe after the
    # first report went out, and a sleeping node reports once per wake.
    client.publish(node.diagnostics_topic, json.dumps(report), 0, True)
