# A small fake of MicroPython's `network` for the Unix port. The host's own
# network is always there; tests make Wi-Fi fail by setting the environment
# variable FAKE_WIFI (see below) or the module attributes.
#   FAKE_WIFI=down         association never succeeds
#   FAKE_WIFI=hang         WLAN.connect() never returns (a driver stuck in the SDK)
#   FAKE_WIFI_DOWN_MS=N    no association for the first N ms (the access point
#                          comes back after a power cut later than the board)
#   FAKE_WIFI_ASSOCIATE_MS time association takes (default 50)
import os
import time

STA_IF = 0
AP_IF = 1

association_ms = int(os.getenv("FAKE_WIFI_ASSOCIATE_MS") or 50)
down = os.getenv("FAKE_WIFI") == "down"
hang = os.getenv("FAKE_WIFI") == "hang"
down_ms = int(os.getenv("FAKE_WIFI_DOWN_MS") or 0)


class WLAN:
    def __init__(self, interface=STA_IF):
        self._active = False
        self._connect_started = None
        self._created = time.ticks_ms()
        self.connect_calls = 0

    def active(self, on=None):
        if on is not None:
            self._active = on
        return self._active

    def connect(self, ssid=None, key=None):
        self.connect_calls += 1
        if hang:
            print("network.WLAN.connect: hanging (FAKE_WIFI=hang)")
            while True:
                time.sleep_ms(1000)
        self._connect_started = time.ticks_ms()

    def disconnect(self):
        self._connect_started = None

    def isconnected(self):
        if down or self._connect_started is None:
            return False
        now = time.ticks_ms()
        since = time.ticks_diff(now, self._connect_started)
        if down_ms:
            # The driver keeps trying while the access point is away: it
            # associates association_ms after the access point is back.
            back = time.ticks_diff(now, self._created) - down_ms
            since = min(since, back)
        return since >= association_ms

    def status(self, param=None):
        if param == "rssi":
            return -55
        return 1010 if self.isconnected() else 1001

    def ifconfig(self):
        return ("127.0.0.1", "255.0.0.0", "127.0.0.1", "127.0.0.1")
