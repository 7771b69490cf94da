# The board used by `make run` and CI: the MicroPython Unix port with
# simulated sensors. MQTT_HOST / MQTT_PORT in the environment override BROKER.
MODEL = "MicroPython Unix port"
ROOM = "kitchen"
NODE = "unix-node"
BROKER = {"host": "127.0.0.1", "port": 1883, "keepalive_s": 30}
WIFI = None  # the host's network is always up
SENSORS = [
    {"driver": "sim_temperature", "period_s": 2, "qos": 1, "params": {"seed": 1}},
    {"driver": "sim_humidity", "period_s": 2, "qos": 1, "params": {"seed": 2}},
    {"driver": "sim_pressure", "period_s": 5, "qos": 0, "params": {"seed": 3}},
    {"driver": "sim_illuminance", "period_s": 5, "qos": 0, "params": {"seed": 4}},
]
BUFFER = 256  # readings kept while the broker is unreachable
DIAGNOSTICS_S = 30
