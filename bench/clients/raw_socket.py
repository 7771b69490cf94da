# No client at all, for reference: a blocking socket with TCP_NODELAY (as
# this project's client sets it) writes one precomputed PUBLISH per
# message; at QoS 1 it writes the PUBLISH (always packet id 1, free again
# once acked) and reads the 4-byte PUBACK before the next. With a window it
# keeps up to common.window[0] in flight (packet ids 1..window; mosquitto
# acks in order).
#
# mode "qos0" with cfg["batch_bytes"]: the QoS 0 packets are packed into
# writes of at most that many bytes. It publishes far faster than one write
# per message and arrives at the subscriber no faster: the arrival rate is
# the broker's and the subscriber's, not a client's limit.
import common

cfg = common.config()
IPPROTO_TCP = 6  # the Unix port's socket module names neither
TCP_NODELAY = 1


def remaining_length(n):
    # 3.1.1 section 2.2.3: 7 bits a byte, low first, high bit = more follows.
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def publish_packet(qos, payload, packet_id=1):
    topic = common.TOPIC
    body = bytearray([len(topic) >> 8, len(topic) & 0xFF]) + topic
    if qos:
        body += bytes([packet_id >> 8, packet_id & 0xFF])
    body += payload
    return bytes([0x30 | (qos << 1)]) + remaining_length(len(body)) + bytes(body)


def connect_packet(client_id):
    cid = client_id.encode()
    # 3.1.1 section 3.1: "MQTT", level 4, clean session, keepalive 60 s.
    body = b"\x00\x04MQTT\x04\x02\x00\x3c" + bytes([len(cid) >> 8, len(cid) & 0xFF]) + cid
    return bytes([0x10, len(body)]) + body


STAGE = bytearray(4)
ACK = bytearray(4)


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


def load():
    import socket

    return socket


def connect(socket):
    sock = socket.socket()
    sock.connect(socket.getaddrinfo(common.HOST, cfg["port"])[0][-1])
    sock.setsockopt(IPPROTO_TCP, TCP_NODELAY, 1)
    sock.write(connect_packet(cfg["client_id"]))
    read_exactly(sock, ACK, 4)
    if ACK[0] != 0x20 or ACK[3] != 0:
        raise OSError("CONNACK refused: %r" % bytes(ACK))
    return sock


def disconnect(sock):
    sock.write(b"\xe0\x00")
    sock.close()


socket, sock, heap = common.import_and_connect(load, connect, disconnect)

# Every packet is made here, before any measurement: the loops only write.
QOS0 = {size: publish_packet(0, p) for size, p in common.PAYLOADS.items()}
QOS1 = {size: publish_packet(1, p) for size, p in common.PAYLOADS.items()}
WINDOW_MAX = 16
WINDOW_PACKETS = [publish_packet(1, common.PAYLOADS[cfg["payloads"][0]], i + 1) for i in range(WINDOW_MAX)]


def read_puback():
    read_exactly(sock, ACK, 4)
    if ACK[0] != 0x40:
        raise OSError("expected PUBACK, got type 0x%02x" % ACK[0])


def publish_qos0(n, payload):
    packet = QOS0[len(payload)]
    i = 0
    while i < n:
        sock.write(packet)
        i += 1
    return n


def publish_qos1(n, payload):
    packet = QOS1[len(payload)]
    started = common.ticks_ms()
    i = 0
    while i < n and common.in_time(started):
        sock.write(packet)
        read_puback()
        i += 1
    return i


def publish_qos1_window(n, payload):
    limit = common.window[0]
    sent = 0
    acked = 0
    while acked < n:
        while sent < n and sent - acked < limit:
            sock.write(WINDOW_PACKETS[sent % limit])
            sent += 1
        read_puback()
        acked += 1
    return n


def publish_rate_batched(n, payload):
    """n QoS 0 packets packed into writes of at most cfg["batch_bytes"]."""
    packet = publish_packet(0, payload)
    per_write = max(1, cfg["batch_bytes"] // len(packet))
    batch = packet * per_write
    i = 0
    while i + per_write <= n:
        sock.write(batch)
        i += per_write
    if i < n:
        sock.write(packet * (n - i))
    return n


if cfg["mode"] == "main":
    result = common.main_mode(cfg, dict(heap), publish_qos0, publish_qos1, publish_qos1_window)
elif cfg.get("batch_bytes"):
    result = common.qos0_mode(cfg, publish_rate_batched)
else:
    QOS0[len(common.RATE_PAYLOAD)] = publish_packet(0, common.RATE_PAYLOAD)
    result = common.qos0_mode(cfg, publish_qos0)
disconnect(sock)
common.emit(result)
