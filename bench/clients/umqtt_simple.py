# umqtt.simple 1.3.4 (PyPI micropython-umqtt.simple), used as its README
# shows: blocking socket, publish() returns once written (QoS 0) or once
# its PUBACK is read (QoS 1). One message at a time is all its API offers.
#
# cfg["nodelay"]: the caller sets TCP_NODELAY on the client's socket after
# connect (one setsockopt). umqtt.simple writes a PUBLISH as four small
# writes; with Nagle on, the later ones wait for the broker's delayed ACK
# and each QoS 1 message takes ~44 ms.
import common

cfg = common.config()
IPPROTO_TCP = 6  # the Unix port's socket module names neither
TCP_NODELAY = 1


def load():
    from umqtt.simple import MQTTClient

    return MQTTClient


def connect(MQTTClient):
    client = MQTTClient(cfg["client_id"], common.HOST, cfg["port"], keepalive=60)
    client.connect()
    if cfg.get("nodelay"):
        client.sock.setsockopt(IPPROTO_TCP, TCP_NODELAY, 1)
    return client


MQTTClient, client, heap = common.import_and_connect(load, connect, lambda c: c.disconnect())
TOPIC = common.TOPIC


def publish_qos0(n, payload):
    i = 0
    while i < n:
        client.publish(TOPIC, payload)
        i += 1
    return n


def publish_qos1(n, payload):
    started = common.ticks_ms()
    i = 0
    while i < n and common.in_time(started):
        client.publish(TOPIC, payload, False, 1)
        i += 1
    return i


if cfg["mode"] == "main":
    result = common.main_mode(cfg, dict(heap), publish_qos0, publish_qos1)
else:
    result = common.qos0_mode(cfg, publish_qos0)
client.disconnect()
common.emit(result)
