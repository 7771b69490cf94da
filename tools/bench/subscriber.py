"""A raw-socket MQTT subscriber on the host, for the QoS 0 arrival run: it
counts the run's messages and stamps (CLOCK_REALTIME, as the publisher's
time.time_ns()) the arrival of the last one."""

import socket
import time

from tools.bench.settings import ARRIVAL_TIMEOUT_S, RATE_PAYLOAD, TOPIC


class Subscriber:
    def __init__(self, port, client_id):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        cid = client_id.encode()
        body = b"\x00\x04MQTT\x04\x02\x00\x00" + len(cid).to_bytes(2, "big") + cid  # clean, no keepalive
        self.sock.sendall(bytes([0x10, len(body)]) + body)
        self._expect(4, 0x20, "CONNACK")
        sub = b"\x00\x01" + len(TOPIC).to_bytes(2, "big") + TOPIC + b"\x00"  # packet id 1, QoS 0
        self.sock.sendall(bytes([0x82, len(sub)]) + sub)
        self._expect(5, 0x90, "SUBACK")
        self.pending = bytearray()

    def _expect(self, size, kind, name):
        data = b""
        while len(data) < size:
            chunk = self.sock.recv(size - len(data))
            if not chunk:
                raise OSError("broker closed the subscriber before %s" % name)
            data += chunk
        if data[0] != kind or data[-1] == 0x80:
            raise OSError("subscriber: expected %s, got %r" % (name, data))

    def _count_complete(self):
        """Count the rate payloads among the complete packets in pending; keep the rest."""
        buf = self.pending
        end = len(buf)
        i = 0
        found = 0
        while end - i >= 2:
            j = i + 1
            length = 0
            shift = 0
            while j < end:
                byte = buf[j]
                length |= (byte & 0x7F) << shift
                shift += 7
                j += 1
                if not byte & 0x80:
                    break
            else:
                break  # length bytes not all here yet
            if buf[j - 1] & 0x80 or j + length > end:
                break
            if buf[i] >> 4 == 3:  # PUBLISH
                topic_length = buf[j] << 8 | buf[j + 1]
                start = j + 2 + topic_length + (2 if buf[i] & 0x06 else 0)
                if buf[start : j + length] == RATE_PAYLOAD:
                    found += 1
            i = j + length
        del buf[:i]
        return found

    def count(self, expected, proc):
        """Read until `expected` rate messages arrived, the publisher died
        with nothing more arriving, or ARRIVAL_TIMEOUT_S. Returns (count, ns of the last)."""
        self.sock.settimeout(0.2)
        chunk = bytearray(1 << 18)
        count = 0
        last_ns = None
        deadline = time.monotonic() + ARRIVAL_TIMEOUT_S
        quiet_since = None
        while count < expected and time.monotonic() < deadline:
            try:
                n = self.sock.recv_into(chunk)
            except TimeoutError:
                if proc.poll() is not None:
                    quiet_since = quiet_since or time.monotonic()
                    if time.monotonic() - quiet_since > 2:
                        break
                continue
            if not n:
                break
            now = time.time_ns()
            quiet_since = None
            self.pending += chunk[:n]
            found = self._count_complete()
            if found:
                count += found
                last_ns = now
        return count, last_ns

    def close(self):
        try:
            self.sock.sendall(b"\xe0\x00")
        except OSError:
            pass
        self.sock.close()
