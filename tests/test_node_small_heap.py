"""The whole firmware (firmware/main.py with boards/unix.py), compiled with
mpy-cross as a board runs it, under a board's free RAM: it starts, connects
and publishes, and its heap stays flat over hundreds of publish cycles."""

import json
import os
import subprocess
import time

from harness import micropython
from test_node_e2e import Subscriber, wait_until

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

FAST_BOARD = """
MODEL = "small heap test"
ROOM = "kitchen"
NODE = "heap-node"
BROKER = {"host": "127.0.0.1", "port": 1883, "keepalive_s": 10}
SENSORS = [
    {"driver": "sim_temperature", "period_s": 1, "qos": 1, "params": {"seed": 1}},
    {"driver": "sim_humidity", "period_s": 1, "qos": 0, "params": {"seed": 2}},
]
BUFFER = 64
DIAGNOSTICS_S = 1
WATCHDOG_MS = 8000
WIFI = {"ssid": "house"}  # the fake network; a Wi-Fi board also loads the DNS resolver
"""


def test_firmware_runs_in_a_pico_w_heap_with_flat_memory(make_broker, tmp_path):
    (tmp_path / "heap_board.py").write_text(FAST_BOARD)
    broker = make_broker()
    sub = Subscriber(broker, ["house/kitchen/#"])
    lib, _ = micropython.compile_tree()
    env = dict(os.environ)
    paths = [".frozen", lib, str(tmp_path), os.path.join(ROOT, "firmware", "unix_fakes")]
    env.update({"MICROPYPATH": ":".join(paths), "BOARD": "heap_board", "MQTT_PORT": str(broker.port)})
    node = subprocess.Popen(
        micropython.command([os.path.join(ROOT, "firmware", "main.py")], heapsize=micropython.HEAP_PICO_W),
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        diagnostics = "house/kitchen/heap-node/diagnostics"
        assert wait_until(lambda: len(sub.on(diagnostics)) >= 8, 20), "no diagnostics"
        time.sleep(0.1)
    finally:
        node.kill()
        output = node.communicate(timeout=5)[0]
        sub.close()
    assert sub.payloads("house/kitchen/temperature"), output
    assert sub.payloads("house/kitchen/humidity"), output
    reports = [json.loads(p) for p in sub.payloads(diagnostics)]
    free = [r["free_heap"] for r in reports[2:]]  # after warm-up
    # Diagnostics report the free heap right after a collection: with no
    # leak it stays put while readings keep going out.
    assert max(free) - min(free) < 2048, (free, output)
    assert reports[-1]["published"] > reports[1]["published"]
    assert "MemoryError" not in output, output
    # The healthy main loop feeds the watchdog (firmware/main.py passes feed to Node.run).
    assert "machine.WDT: first feed (timeout 8000 ms)" in output, output


# firmware/main.py without its last line (the call to main()), then its
# load_board(): what the board runs before it makes the node.
LOAD_BOARD_ONLY = """
import sys
source = open(sys.argv[1]).read()
assert source.rstrip().endswith("main()")
exec(source.rstrip()[: -len("main()")])
board, config = load_board()
import node
print("ROOM", config["ROOM"])
print("LOADED", "node.config" in sys.modules, hasattr(node, "config"))
"""


def test_firmware_frees_the_board_file_checks_once_the_board_is_loaded(tmp_path):
    script = tmp_path / "load_board_only.py"
    script.write_text(LOAD_BOARD_ONLY)
    lib, _ = micropython.compile_tree()
    env = dict(os.environ)
    paths = [".frozen", lib, os.path.join(ROOT, "boards"), os.path.join(ROOT, "firmware", "unix_fakes")]
    env.update({"MICROPYPATH": ":".join(paths), "BOARD": "unix"})
    result = subprocess.run(
        micropython.command([str(script), os.path.join(ROOT, "firmware", "main.py")], heapsize=micropython.HEAP_PICO_W),
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ROOM " in result.stdout, result.stdout
    # Neither sys.modules nor the package keeps node.config: its code is garbage.
    assert "LOADED False False" in result.stdout, result.stdout
