# This project's client (lib/mqtt), as the node uses it: prebuilt bytes
# topic and payload, default buffer sizes, TCP_NODELAY.
#   mode "main": heap after import and connect, heap per publish (QoS 0 one
#       write per publish, QoS 0 batched, QoS 1 with its acks), QoS 1
#       publish-to-PUBACK latency, QoS 1 rate with the in-flight window.
#   mode "qos0": cfg["count"] QoS 0 publishes of RATE_PAYLOAD, autoflush
#       cfg["autoflush"] (False: packets share the transmit buffer and go
#       out in one write when it is full, and at flush()).
import common

cfg = common.config()
before_modules = common.module_names()
heap_base = common.heap_now()

from mqtt.client import MQTTClient  # noqa: E402

heap_import = common.heap_now() - heap_base
client = MQTTClient(cfg["client_id"], common.HOST, cfg["port"], keepalive=60)
client.connect()
heap_connect = common.heap_now() - heap_base

TOPIC = common.TOPIC
PAYLOAD = common.PAYLOAD
ACK_TIMEOUT_MS = 30000


def publish_qos0(n):
    i = 0
    while i < n:
        client.publish(TOPIC, PAYLOAD, 0)
        i += 1
    client.flush()


def publish_qos1(n):
    # The in-flight window: publish and handle whatever PUBACKs are in,
    # without waiting; then wait for the rest.
    i = 0
    while i < n:
        client.publish(TOPIC, PAYLOAD, 1)
        client.poll(0)
        i += 1
    if not client.wait_for_acks(ACK_TIMEOUT_MS):
        raise OSError("PUBACKs missing after %d ms" % ACK_TIMEOUT_MS)


def main_mode():
    n = cfg["alloc_count"]
    result = {"heap_import": heap_import, "heap_connect": heap_connect}
    result["harness_alloc"] = common.harness_overhead()
    result["alloc_qos0"] = common.allocation(publish_qos0, n)
    client.autoflush = False
    result["alloc_qos0_batched"] = common.allocation(publish_qos0, n)
    client.autoflush = True
    result["alloc_qos1"] = common.allocation(publish_qos1, n)

    samples = []
    started = common.ticks_ms()
    while len(samples) < cfg["latency_count"] and common.ticks_diff(common.ticks_ms(), started) < cfg["cap_ms"]:
        t0 = common.ticks_us()
        client.publish(TOPIC, PAYLOAD, 1)
        client.wait_for_acks(ACK_TIMEOUT_MS)
        samples.append(common.ticks_diff(common.ticks_us(), t0))
    result["latency_us"] = common.median(samples)
    result["latency_samples"] = len(samples)

    count = cfg["qos1_count"]
    t0 = common.ticks_ms()
    publish_qos1(count)
    result["qos1_ms"] = common.ticks_diff(common.ticks_ms(), t0)
    result["qos1_count"] = count
    result["resent"] = client.session.resent
    result["modules"] = common.new_modules(before_modules)
    return result


def qos0_mode():
    count = cfg["count"]
    client.autoflush = cfg.get("autoflush", True)
    payload = common.RATE_PAYLOAD
    t_start = common.time_ns()
    t0 = common.ticks_ms()
    i = 0
    while i < count:
        client.publish(TOPIC, payload, 0)
        i += 1
    client.flush()
    return {
        "heap_connect": heap_connect,
        "t_start_ns": t_start,
        "publish_ms": common.ticks_diff(common.ticks_ms(), t0),
        "count": count,
        "connected": client.connected,
    }


result = main_mode() if cfg["mode"] == "main" else qos0_mode()
client.disconnect()
common.emit(result)
