# A small fake of MicroPython's `network` for the Unix port. The host's own
# network is always there; tests make Wi-Fi fail by setting the environment
# variable FAKE_WIFI (see below) or the module attributes.
#   FAKE_WIFI=down         association never succeeds
#   FAKE_WIFI_ASSOCIATE_MS time association takes (default 50)
import os
import time

STA_IF = 0
AP_IF = 1

association_ms = int(os.getenv("FAKE_WIFI_ASSOCIATE_MS") or 50)
down = os.getenv("FAKE_WIFI") == "down"


class WLAN:
    def __init__(self, interface=STA_IF):
        self._active = False
        self._connect_started = None
        self.connect_calls = 0

    def active(self, on=None):
        if on is not None:
            self._active = on
        return self._active

    def connect(self, ssid=None, key=None):
        self.connect_calls += 1
        self._connect_started = time.ticks_ms()

    def disconnect(self):
        self._connect_started = None

    def isconnected(self):
        if down or self._connect_started is None:
            return False
        return time.ticks_diff(time.ticks_ms(), self._connect_started) >= association_ms

    def status(self, param=None):
        if param == "rssi":
            return -55
        return 1010 if self.isconnected() else 1001

    def ifconfig(self):
        return ("127.0.0.1", "255.0.0.0", "127.0.0.1", "127.0.0.1")
