# Wi-Fi station: associate with a deadline, retry with backoff, never block
# the main loop. The board's `network` module; on the Unix port, the fake
# in firmware/unix_fakes/network.py.

from backoff import Backoff
from compat import ticks_add, ticks_diff


class Wifi:
    def __init__(self, ssid, password, connect_timeout_ms=20000, network_module=None, log=print):
        if network_module is None:
            import network as network_module
        self.ssid = ssid
        self.password = password
        self.connect_timeout_ms = connect_timeout_ms
        self.wlan = network_module.WLAN(network_module.STA_IF)
        self.backoff = Backoff(1000, 60000)
        self.log = log
        self._deadline = 0
        self._connecting = False
        self._retry_due = True  # try at the first poll
        self._retry_at = 0
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
        """Advance association without blocking. Returns True when up."""
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
            if ticks_diff(now, self._deadline) >= 0:
                self._connecting = False
                self.failures += 1
                delay = self.backoff.next_ms()
                self._retry_at = ticks_add(now, delay)
                self._retry_due = False
                self.log("wifi: no association with %r within %d ms, retry in %d ms"
                         % (self.ssid, self.connect_timeout_ms, delay))
                try:
                    self.wlan.disconnect()
                except OSError:
                    pass
            return False
        if self._retry_due or ticks_diff(now, self._retry_at) >= 0:
            self._retry_due = False
            self.wlan.active(True)
            try:
                self.wlan.connect(self.ssid, self.password)
            except OSError as e:
                self.log("wifi: connect to %r failed at once: %r" % (self.ssid, e))
            self._connecting = True
            self._deadline = ticks_add(now, self.connect_timeout_ms)
        return False
