# The least of MicroPython's `network` that mqtt_async (micropython-mqtt
# 0.7b4) needs on the Unix port: a station interface that is already up,
# as on a board whose Wi-Fi came up before the client starts. The bench
# imports it before taking its heap baseline: on a board it is built in.
# (firmware/unix_fakes/network.py simulates association and lacks
# STAT_CONNECTING, which mqtt_async reads.)
STA_IF = 0
AP_IF = 1
STAT_IDLE = 1000
STAT_CONNECTING = 1001
STAT_GOT_IP = 1010


class WLAN:
    def __init__(self, interface=STA_IF):
        self.interface = interface

    def active(self, on=None):
        return True

    def connect(self, ssid=None, key=None):
        pass

    def disconnect(self):
        pass

    def isconnected(self):
        return True

    def status(self, param=None):
        return STAT_GOT_IP
