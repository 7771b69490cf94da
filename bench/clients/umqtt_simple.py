# umqtt.simple 1.3.4 (PyPI micropython-umqtt.simple), used as its README
# shows: blocking socket, publish() returns once written (QoS 0) or once
# its PUBACK is read (QoS 1). One message at a time is all its API offers.
import common

cfg = common.config()
before_modules = common.module_names()
heap_base = common.heap_now()

from umqtt.simple import MQTTClient  # noqa: E402

heap_import = common.heap_now() - heap_base
client = MQTTClient(cfg["client_id"], common.HOST, cfg["port"], keepalive=60)
client.connect()
heap_connect = common.heap_now() - heap_base

TOPIC = common.TOPIC
PAYLOAD = common.PAYLOAD


def publish_qos0(n):
    i = 0
    while i < n:
        client.publish(TOPIC, PAYLOAD)
        i += 1


def publish_qos1(n):
    i = 0
    while i < n:
        client.publish(TOPIC, PAYLOAD, False, 1)
        i += 1


def main_mode():
    n = cfg["alloc_count"]
    result = {"heap_import": heap_import, "heap_connect": heap_connect}
    result["harness_alloc"] = common.harness_overhead()
    result["alloc_qos0"] = common.allocation(publish_qos0, n)
    result["alloc_qos1"] = common.allocation(publish_qos1, cfg.get("alloc_count_qos1", n))
    common.sequential_qos1(result, publish_qos1, cfg)
    result["modules"] = common.new_modules(before_modules)
    return result


def qos0_mode():
    count = cfg["count"]
    payload = common.RATE_PAYLOAD
    t_start = common.time_ns()
    t0 = common.ticks_ms()
    i = 0
    while i < count:
        client.publish(TOPIC, payload)
        i += 1
    return {
        "heap_connect": heap_connect,
        "t_start_ns": t_start,
        "publish_ms": common.ticks_diff(common.ticks_ms(), t0),
        "count": count,
    }


result = main_mode() if cfg["mode"] == "main" else qos0_mode()
client.disconnect()
common.emit(result)
