# An ESP32 DevKitC in the living room: BME280 on I2C, a DS18B20 probe on
# 1-Wire, and the chip's own temperature. Edit this file per device; the
# Wi-Fi and broker passwords go in secrets.py (see secrets_template.py).
MODEL = "ESP32 DevKitC"
ROOM = "living_room"
NODE = "esp32-living-room"
BROKER = {"host": "192.168.1.10", "port": 1883, "keepalive_s": 60}
WIFI = {"ssid": "house", "connect_timeout_s": 20}
I2C = {"i2c0": {"id": 0, "scl": 22, "sda": 21, "freq": 400000}}
ONEWIRE = {"ow0": {"pin": 4}}
SENSORS = [
    {"driver": "bme280", "bus": "i2c0", "params": {"address": 0x76}, "period_s": 30, "qos": 1},
    {"driver": "ds18b20", "bus": "ow0", "prefix": "floor_", "period_s": 60, "qos": 1},
]
BUFFER = 512
DIAGNOSTICS_S = 300
WATCHDOG_MS = 30000
# Press BOOT (GPIO0) just after a reset, not during it, for the REPL without node or watchdog.
SAFE_MODE_PIN = 0
INFLIGHT = 16
