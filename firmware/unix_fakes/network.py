# A small fake of MicroPython's `network` for the Unix port. The host's own
# network is always there; tests make Wi-Fi fail by setting the environment
# variable FAKE_WIFI (see below) or the module attributes.
#   FAKE_WIFI=down         association never succeeds
#   FAKE_WIFI=hang         WLAN.connect() never returns (a driver stuck in the SDK)
#   FAKE_WIFI_DOWN_MS=N    no association for the first N ms (the access point
#                          comes back after a power cut later than the board)
#   FAKE_WIFI_ASSOCIATE_MS time association takes (default 50)
#   FAKE_WIFI_MAC=aa:bb:..  the station's MAC (default 02:00:00:00:00:01, a
#                          locally administered address: no vendor's)
import os
import time

# Not compat's getenv: like `machine`, this stands in for a built-in module,
# which needs nothing from lib/. The 32-bit runtime the portable tests also
# run on has no os.getenv: every variable reads as unset there.
getenv = getattr(os, "getenv", lambda name: None)

STA_IF = 0
AP_IF = 1

association_ms = int(getenv("FAKE_WIFI_ASSOCIATE_MS") or 50)
down = getenv("FAKE_WIFI") == "down"
hang = getenv("FAKE_WIFI") == "hang"
down_ms = int(getenv("FAKE_WIFI_DOWN_MS") or 0)
mac = bytes(int(part, 16) for part in (getenv("FAKE_WIFI_MAC") or "02:00:00:00:00:01").split(":"))


class WLAN:
    def __init__(self, interface=STA_IF):
        self._active = False
        self._connect_started = None
        self._associated = False
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
        self._associated = False

    def disconnect(self):
        self._connect_started = None
        self._associated = False

    def isconnected(self):
        if down or self._connect_started is None:
            return False
        # Once associated, it stays so: the time since connect() is measured
        # only until then, as ticks_diff reads it wrong after 2**29 ms (a
        # board's ticks wrap every 2**30 ms), and a link can be up for weeks.
        if not self._associated:
            self._associated = self._associating_for(self._connect_started) >= association_ms
        return self._associated

    def _associating_for(self, started):
        now = time.ticks_ms()
        since = time.ticks_diff(now, started)
        if down_ms:
            # The driver keeps trying while the access point is away: it
            # associates association_ms after the access point is back.
            back = time.ticks_diff(now, self._created) - down_ms
            since = min(since, back)
        return since

    def status(self, param=None):
        if param == "rssi":
            return -55
        return 1010 if self.isconnected() else 1001

    def config(self, *args, **kwargs):
        # As a board's: config("mac") reads a parameter; config(key=value)
        # sets one (taken and ignored here).
        if kwargs:
            return None
        if args == ("mac",):
            return mac
        raise ValueError("unknown config param")

    def ifconfig(self):
        return ("127.0.0.1", "255.0.0.0", "127.0.0.1", "127.0.0.1")
