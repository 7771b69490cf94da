"""A fake NTP server for tests (CPython, a background thread, UDP on
127.0.0.1): it tells the time the test chooses, so a test can see that a
node's timestamps came from NTP and not from the host clock.

    with NTPServer(now=1937995200) as ntp:   # 2031-05-31T12:00:00Z
        ... query 127.0.0.1:ntp.port ...
        ntp.mode = "silent"                 # a hung server: never answers
        ntp.queries                         # requests seen

Modes: "answer" (the chosen time, advancing with the host clock), "silent",
"kiss" (stratum 0: a kiss-o'-death), "unsynchronized" (leap indicator 3),
"stray" (first a reply that does not echo the request and tells a time a
year off, then the real one).
"""

import socket
import struct
import threading
import time

NTP_TO_UNIX = 2208988800
MODES = ("answer", "silent", "kiss", "unsynchronized", "stray")


def ntp_timestamp(unix_seconds):
    whole = int(unix_seconds)
    fraction = int((unix_seconds - whole) * (1 << 32))
    return ((whole + NTP_TO_UNIX) & 0xFFFFFFFF, fraction)


class NTPServer:
    def __init__(self, now):
        self.offset = now - time.time()
        self.mode = "answer"
        self.queries = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()

    def _serve(self):
        while not self._stop.is_set():
            try:
                request, peer = self.sock.recvfrom(512)
            except TimeoutError:
                continue
            except OSError:
                return
            self.queries += 1
            if len(request) < 48 or self.mode == "silent":
                continue
            now = time.time() + self.offset
            if self.mode == "stray":
                self.sock.sendto(self._reply(b"\x00" * 48, now - 365 * 86400), peer)
            self.sock.sendto(self._reply(request, now), peer)

    def _reply(self, request, now):
        leap, stratum = (3, 2) if self.mode == "unsynchronized" else (0, 0 if self.mode == "kiss" else 2)
        reply = bytearray(48)
        reply[0] = leap << 6 | 4 << 3 | 4  # version 4, mode 4 (server)
        reply[1] = stratum
        struct.pack_into(">II", reply, 16, *ntp_timestamp(now))  # reference
        reply[24:32] = request[40:48]  # originate: the client's transmit timestamp
        struct.pack_into(">II", reply, 32, *ntp_timestamp(now))  # receive
        struct.pack_into(">II", reply, 40, *ntp_timestamp(now))  # transmit
        return bytes(reply)
