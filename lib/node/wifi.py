# Wi-Fi station: associate with a deadline, retry with backoff, never block
# the main loop. The board's `network` module; on the Unix port, the fake
# in firmware/unix_fakes/network.py.
#
# A wait (the association deadline, the pause before a retry) is kept as the
# tick it began and its length, and measured with ticks_diff: no tick is
# computed ahead with ticks_add. A board's ticks wrap every 2**30 ms and
# ticks_diff reads only +-2**29 ms (6.2 days, DESIGN.md "Time is ticks"), so
# a wait that reads as begun in the future began more than 2**29 ms ago: it
# is over, not (as a deadline computed ahead would read) days away.

from backoff import Backoff
from compat import const, ticks_diff

_MAX_WAIT_MS = const((1 << 29) - 1)  # the longest wait ticks_diff can measure


class Wifi:
    def __init__(self, ssid, password, connect_timeout_ms=20000, network_module=None, log=print):
        if not isinstance(connect_timeout_ms, int) or not 0 < connect_timeout_ms <= _MAX_WAIT_MS:
            raise ValueError("connect_timeout_ms must be 1 to %d ms, got %r" % (_MAX_WAIT_MS, connect_timeout_ms))
        if network_module is None:
            import network as network_module
        self.ssid = ssid
        self.password = password
        self.connect_timeout_ms = connect_timeout_ms
        self.wlan = network_module.WLAN(network_module.STA_IF)
        self.backoff = Backoff(1000, 60000)
        self.log = log
        self._connecting = False
        self._retry_due = True  # try at the first poll
        self._wait_from = 0  # tick the current wait began
        self._wait_ms = 0  # its length: connect_timeout_ms, or the backoff delay
        self.reconnects = 0
        self.failures = 0

    def is_up(self):
        return self.wlan.isconnected()

    def rssi(self):
        try:
            return self.wlan.status("rssi")
        except (OSError, ValueError, TypeError):
            return 0

    def dns_server(self):
        """The DNS server DHCP gave the station (ifconfig's fourth field)."""
        return self.wlan.ifconfig()[3]

    def poll(self, now):
        """Advance association without blocking. Returns True when up.
        now: ticks_ms() read for this call, never older than the last call's."""
        if self.wlan.isconnected():
            if self._connecting:
                self._connecting = False
                self.backoff.reset()
                self.reconnects += 1
                self.log("wifi: up on %r" % self.ssid)
            # When the link drops, associate again at once: a retry time
            # kept from days ago would be meaningless once ticks wrap.
            self._retry_due = True
            return True
        if self._connecting:
            if self._waited(now):
                self._give_up(now)
            return False
        if self._retry_due or self._waited(now):
            self._associate(now)
        return False

    def _waited(self, now):
        elapsed = ticks_diff(now, self._wait_from)
        # Negative: begun more than 2**29 ms ago (see the top of this file).
        return elapsed < 0 or elapsed >= self._wait_ms

    def _wait(self, now, ms):
        self._wait_from = now
        self._wait_ms = ms

    def _associate(self, now):
        self._retry_due = False
        self.wlan.active(True)
        try:
            self.wlan.connect(self.ssid, self.password)
        except OSError as e:
            self.log("wifi: connect to %r failed at once: %r" % (self.ssid, e))
        self._connecting = True
        self._wait(now, self.connect_timeout_ms)

    def _give_up(self, now):
        self._connecting = False
        self.failures += 1
        delay = self.backoff.next_ms()
        self._wait(now, delay)
        self.log(
            "wifi: no association with %r within %d ms, retry in %d ms" % (self.ssid, self.connect_timeout_ms, delay)
        )
        try:
            self.wlan.disconnect()
        except OSError:
            pass
