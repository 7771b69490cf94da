"""The 32-bit runtime (tests/harness/wasm.py) is what the suite relies on:
a board's int and tick sizes, and test modules small enough to load on one."""

import os

from harness import micropython, wasm

PROBE = """
import binascii, gc, time
print("ticks_add(0, -1)", time.ticks_add(0, -1))
try:
    time.ticks_add(0, 604800000)
    print("week", "taken")
except OverflowError:
    print("week", "OverflowError")
data = bytes(range(16))
checksum = binascii.crc32(data)  # 0xcecee288: not a small int on 32 bits
gc.collect()
before = gc.mem_alloc()
checksum = binascii.crc32(data)
print("crc32 bytes", gc.mem_alloc() - before)
"""

# A board has about 100 KB free for Python after boot (an ESP32; a Pico W
# 160 KB): a test module must leave room to run once imported.
MODULE_HEAP_BUDGET = 80 * 1024


def test_the_32bit_runtime_has_a_boards_ticks_and_small_ints(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE)
    result = wasm.run(str(probe), mounts=())
    assert result.returncode == 0, result.stderr
    lines = dict(line.rsplit(" ", 1) for line in result.stdout.splitlines())
    assert lines["ticks_add(0, -1)"] == str((1 << 30) - 1)
    assert lines["week"] == "OverflowError"
    assert int(lines["crc32 bytes"]) > 0  # a long int, as on a board; the Unix port allocates none


def _portable_modules_without_network():
    names = []
    for file in sorted(os.listdir(micropython.PORTABLE)):
        if file.startswith("test_") and file.endswith(".py"):
            with open(os.path.join(micropython.PORTABLE, file)) as f:
                if "\nNEEDS_NETWORK = True" not in f.read():
                    names.append(file[:-3])
    return names


def test_every_32bit_test_module_loads_within_a_boards_heap():
    compiled_lib, compiled_portable = micropython.compile_tree()
    names = _portable_modules_without_network()
    result = wasm.run(
        os.path.join(micropython.ROOT, "tests", "scripts", "import_heap.py"),
        names,
        mounts=((compiled_lib, "/lib"), (compiled_portable, "/portable")),
        heap_bytes=8 * 1024 * 1024,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    kept = dict(line.split(" ") for line in result.stdout.splitlines())
    assert sorted(kept) == names
    too_big = {name: int(size) for name, size in kept.items() if int(size) > MODULE_HEAP_BUDGET}
    assert not too_big, "test modules keeping more than %d bytes once imported: %r" % (MODULE_HEAP_BUDGET, too_big)
