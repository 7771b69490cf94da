"""`tools/bench.py --quick` end to end: our client and the raw socket on the
Unix port against a private mosquitto, small counts, one round. Pins down
that the bench runs and reports every figure, and that our client
allocates nothing per publish. No timing is asserted: the full bench
(`make bench`) is where rates are compared, within one run."""

import json
import os
import subprocess
import sys

from harness import micropython

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "tools", "bench.py")

FIGURES = {
    "raw": ["alloc_qos0", "alloc_qos1", "qos0_rate", "qos0_publish_rate", "qos1_rate", "latency_us", "heap_connect"],
    "raw_window": ["qos1_rate"],
    "ours": [
        "alloc_qos0",
        "alloc_qos1",
        "qos0_rate",
        "qos0_publish_rate",
        "qos1_rate",
        "latency_us",
        "heap_import",
        "heap_connect",
        "mpy_size",
    ],
    "ours_batched": ["alloc_qos0", "qos0_rate", "qos0_publish_rate"],
}


def run_quick(out):
    result = subprocess.run(
        [sys.executable, BENCH, "--quick", "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    with open(out / "results.json") as f:
        return json.load(f)


def test_bench_quick_reports_every_figure_with_zero_allocation_per_publish(tmp_path):
    results = run_quick(tmp_path)

    errors = [run.get("error") for run in results["runs"] if "error" in run]
    assert not errors
    for row, names in FIGURES.items():
        for name in names:
            figure = results["figures"][row][name]
            assert set(figure) >= {"min", "median", "max", "runs"}, (row, name)
            assert len(figure["runs"]) == 1, (row, name)
    ours = results["figures"]["ours"]
    assert ours["alloc_qos0"]["max"] == 0
    assert ours["alloc_qos1"]["max"] == 0
    assert results["figures"]["ours_batched"]["alloc_qos0"]["max"] == 0
    for run in results["runs"]:
        assert run["main"]["harness_alloc"] == 0  # the measuring itself allocates nothing
        for key in [k for k in run if k.startswith("qos0")]:
            assert run[key]["arrived"] == run[key]["count"]  # every QoS 0 message reached the subscriber
    assert set(results["board_sizes"]["ours"]) >= {
        "backoff.py",
        "compat.py",
        "mqtt/__init__.py",
        "mqtt/client.py",
        "mqtt/packet.py",
        "mqtt/session.py",
        "mqtt/topic.py",
    }
    allocation_target = [t for t in results["targets"] if t["target"].startswith("0 B allocated")]
    assert allocation_target and allocation_target[0]["met"]
    assert (tmp_path / "RESULTS.md").exists()
    assert set(results["meta"]["machine"]) >= {"nproc", "CPU"}
    assert set(results["meta"]["versions"]) >= {"micropython", "mosquitto", "mpy-cross"}


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
