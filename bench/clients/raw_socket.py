# The limit: no client at all. A blocking socket with TCP_NODELAY (as this
# project's client sets it) writes one precomputed PUBLISH per message; at
# QoS 1 it writes the PUBLISH (always packet id 1, free again once acked)
# and reads the 4-byte PUBACK before the next. For reference it also keeps
# 16 QoS 1 messages in flight (packet ids 1..16; mosquitto acks in order),
# the window this project's client uses: the limit of a pipelined client.
import common

cfg = common.config()
before_modules = common.module_names()
heap_base = common.heap_now()

import socket  # noqa: E402

heap_import = common.heap_now() - heap_base


WINDOW = 16


def publish_packet(qos, payload, packet_id=1):
    topic = common.TOPIC
    remaining = 2 + len(topic) + (2 if qos else 0) + len(payload)
    packet = bytearray([0x30 | (qos << 1), remaining, 0, len(topic)])  # remaining < 128 here
    packet += topic
    if qos:
        packet += bytes([packet_id >> 8, packet_id & 0xFF])
    packet += payload
    return bytes(packet)


def connect_packet(client_id):
    cid = client_id.encode()
    # 3.1.1 section 3.1: "MQTT", level 4, clean session, keepalive 60 s.
    body = b"\x00\x04MQTT\x04\x02\x00\x3c" + bytes([len(cid) >> 8, len(cid) & 0xFF]) + cid
    return bytes([0x10, len(body)]) + body


def read_exactly(sock, buf, n):
    got = 0
    while got < n:
        k = sock.readinto(buf, n - got) if got == 0 else sock.readinto(STAGE, n - got)
        if not k:
            raise OSError("connection closed by the broker")
        if got:
            for i in range(k):
                buf[got + i] = STAGE[i]
        got += k


STAGE = bytearray(4)
ACK = bytearray(4)
PUBLISH_QOS0 = publish_packet(0, common.PAYLOAD)
PUBLISH_QOS1 = publish_packet(1, common.PAYLOAD)
RATE_QOS0 = publish_packet(0, common.RATE_PAYLOAD)

sock = socket.socket()
sock.connect(socket.getaddrinfo(common.HOST, cfg["port"])[0][-1])
sock.setsockopt(6, 1, 1)  # IPPROTO_TCP, TCP_NODELAY: the Unix port names neither
sock.write(connect_packet(cfg["client_id"]))
read_exactly(sock, ACK, 4)
if ACK[0] != 0x20 or ACK[3] != 0:
    raise OSError("CONNACK refused: %r" % bytes(ACK))
heap_connect = common.heap_now() - heap_base


def publish_qos0(n):
    i = 0
    while i < n:
        sock.write(PUBLISH_QOS0)
        i += 1


def publish_qos1(n):
    i = 0
    while i < n:
        sock.write(PUBLISH_QOS1)
        read_exactly(sock, ACK, 4)
        if ACK[0] != 0x40:
            raise OSError("expected PUBACK, got type 0x%02x" % ACK[0])
        i += 1


def publish_qos1_window(n):
    packets = [publish_packet(1, common.PAYLOAD, i + 1) for i in range(WINDOW)]  # made here: not in heap_connect
    sent = 0
    acked = 0
    while acked < n:
        while sent < n and sent - acked < WINDOW:
            sock.write(packets[sent % WINDOW])
            sent += 1
        read_exactly(sock, ACK, 4)
        if ACK[0] != 0x40:
            raise OSError("expected PUBACK, got type 0x%02x" % ACK[0])
        acked += 1


def main_mode():
    n = cfg["alloc_count"]
    result = {"heap_import": heap_import, "heap_connect": heap_connect}
    result["harness_alloc"] = common.harness_overhead()
    result["alloc_qos0"] = common.allocation(publish_qos0, n)
    result["alloc_qos1"] = common.allocation(publish_qos1, n)
    common.sequential_qos1(result, publish_qos1, cfg)
    t0 = common.ticks_ms()
    publish_qos1_window(cfg["qos1_count"])
    result["qos1_window_ms"] = common.ticks_diff(common.ticks_ms(), t0)
    result["qos1_window_count"] = cfg["qos1_count"]
    result["modules"] = common.new_modules(before_modules)
    return result


def qos0_mode():
    count = cfg["count"]
    t_start = common.time_ns()
    t0 = common.ticks_ms()
    i = 0
    while i < count:
        sock.write(RATE_QOS0)
        i += 1
    return {
        "heap_connect": heap_connect,
        "t_start_ns": t_start,
        "publish_ms": common.ticks_diff(common.ticks_ms(), t0),
        "count": count,
    }


result = main_mode() if cfg["mode"] == "main" else qos0_mode()
sock.write(b"\xe0\x00")  # DISCONNECT
sock.close()
common.emit(result)
