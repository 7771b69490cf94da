"""`python -m tools.bench --quick` end to end: our client and a raw socket on
the Unix port against a private mosquitto, small counts, one round, and the
32-bit pass on the WebAssembly port. Pins down that the bench runs and
reports every figure, and that our client allocates nothing per publish, on
64 and on 32 bits. No timing is asserted: the full bench (`make bench`) is
where CPU times and rates are compared, within one run."""

import json
import math
import os
import subprocess
import sys

from harness import micropython

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAYLOADS = (20, 200, 2000)

PER_SIZE = ["cpu_qos0_%d", "cpu_qos1_%d", "rate_qos0_%d", "rate_qos1_%d", "alloc_qos0_%d", "alloc_qos1_%d"]
FIGURES = {
    "raw": [name % n for name in PER_SIZE for n in PAYLOADS]
    + ["cpu_qos1_window16", "arrival_rate", "publish_rate", "arrival_rate_batched", "publish_rate_batched"],
    "ours": [name % n for name in PER_SIZE for n in PAYLOADS]
    + [
        "cpu_qos1_window16",
        "cpu_qos1_window2",
        "cpu_qos0_batched",
        "arrival_rate",
        "publish_rate",
        "arrival_rate_batched",
        "publish_rate_batched",
        "heap_import",
        "heap_import_cold",
        "heap_connect",
        "heap_connect_node",
        "mpy_size",
        # 32-bit, from the WebAssembly port
        "b32_import",
        "b32_import_cold",
        "b32_heap_connect",
        "b32_heap_connect_node",
        "b32_node_import",
        "b32_store_append",
        "b32_store_replay",
    ]
    + ["b32_alloc_qos%d_%d" % (qos, n) for qos in (0, 1) for n in PAYLOADS],
}


def run_quick(out):
    result = subprocess.run(
        [sys.executable, "-m", "tools.bench", "--quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    with open(out / "results.json") as f:
        return json.load(f)


def test_bench_quick_reports_every_figure_with_zero_allocation_per_publish(tmp_path):
    results = run_quick(tmp_path)
    figures = results["figures"]

    assert not [run["error"] for run in results["runs"] if "error" in run]
    assert "error" not in results["board32"]["ours"], results["board32"]["ours"]
    for row, names in FIGURES.items():
        for name in names:
            figure = figures[row].get(name)
            assert figure is not None, (row, name)
            assert set(figure) >= {"min", "median", "max", "runs"}, (row, name)
            assert all(math.isfinite(v) for v in figure["runs"]), (row, name)
    ours = figures["ours"]
    for name in ("heap_import", "heap_connect", "heap_connect_node", "b32_import", "b32_heap_connect", "mpy_size"):
        assert ours[name]["min"] > 0, name

    # Not one byte per publish, on the Unix port and on 32 bits, at every
    # size: over the whole larger run (first calls included), not only the
    # difference the peers' figures are.
    allocations = [name for name in ours if name.startswith(("alloc_", "b32_alloc_"))]
    assert len(allocations) >= 4 * 2 * len(PAYLOADS)
    for name in allocations:
        assert ours[name]["max"] == 0, name
    for run in results["runs"]:
        assert run["main"]["harness_alloc"] == 0  # the measuring itself allocates nothing
        for key in [k for k in run if k.startswith("arrival")]:
            assert run[key]["arrived"] == run[key]["count"]  # every QoS 0 message reached the subscriber
    assert set(results["board_sizes"]["ours"]) >= {
        "compat.py",
        "mqtt/__init__.py",
        "mqtt/client.py",
        "mqtt/packet.py",
        "mqtt/session.py",
        "mqtt/topic.py",
    }
    # The client from a ROMFS image runs its bytecode in place: the same
    # import and connect keep less heap than from the .mpy files.
    romfs = results["romfs"]
    assert "error" not in romfs, romfs
    assert romfs["romfs"]["loaded_from"].startswith("/rom/"), romfs
    assert not romfs["files"]["loaded_from"].startswith("/rom/"), romfs
    assert 0 < romfs["romfs"]["heap_import"] < romfs["files"]["heap_import"], romfs
    assert 0 < romfs["romfs"]["heap_connect"] < romfs["files"]["heap_connect"], romfs
    page = (tmp_path / "RESULTS.md").read_text()
    assert "## Summary" in page and results["clients"]["ours"]["version"] in page
    assert "## This project from a ROMFS image" in page
    assert set(results["meta"]["machine"]) >= {"nproc", "CPU"}
    assert set(results["meta"]["versions"]) >= {"micropython (Unix port, 64-bit)", "mosquitto", "mpy-cross"}


def test_store_bench_reports_rates_flash_bytes_and_no_allocation(tmp_path):
    """tools/bench_store.py (make bench-store), small: every setting reports,
    appends allocate nothing, and batching cuts the syncs per reading."""
    result = micropython.run(["tools/bench_store.py", str(tmp_path), "300", "1"], timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = {}
    for line in result.stdout.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if line.startswith("| all") or line.startswith("| latest"):
            rows[cells[0]] = cells
    assert len(rows) == 4, result.stdout
    for name, cells in rows.items():
        assert float(cells[6]) == 0.0, (name, cells)  # heap B/append
        assert 16.0 <= float(cells[4]) <= 17.0, (name, cells)  # a 16-byte record plus markers
    assert float(rows["all, flush_every=1 (a sync per reading)"][5]) >= 1.0
    assert float(rows["all, flush_every=32 (default)"][5]) <= 2 / 32
    assert rows["all, flush_every=1 (a sync per reading)"][2] == "1.0x"
    assert os.listdir(tmp_path) == []  # its directory removed
