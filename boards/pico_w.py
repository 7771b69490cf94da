# A Raspberry Pi Pico W in the bedroom: SHT3x on I2C0, a DHT22, a light
# sensor (LDR divider) on ADC0, and the RP2040's own temperature (ADC 4).
MODEL = "Raspberry Pi Pico W"
ROOM = "bedroom"
NODE = "pico-bedroom"
BROKER = {"host": "192.168.1.10", "port": 1883, "keepalive_s": 60}
WIFI = {"ssid": "house", "connect_timeout_s": 20}
I2C = {"i2c0": {"id": 0, "scl": 5, "sda": 4, "freq": 400000}}
SENSORS = [
    {"driver": "sht3x", "bus": "i2c0", "params": {"address": 0x44}, "period_s": 30, "qos": 1},
    {"driver": "dht22", "pin": 15, "prefix": "window_", "period_s": 60, "qos": 1},
    {"driver": "adc", "pin": 26, "prefix": "light_", "period_s": 60, "qos": 0},
    {"driver": "mcu_temp", "pin": 4, "prefix": "chip_", "period_s": 300, "qos": 0},
]
BUFFER = 512
DIAGNOSTICS_S = 300
WATCHDOG_MS = 8000  # the RP2040 watchdog's maximum is 8.3 s
# Hold BOOTSEL in the first second after a reset for the REPL without node or watchdog.
SAFE_MODE_PIN = "bootsel"
