"""bench/throughput.png: CPU and bytes per publish, heap and QoS 0 rates, per client."""

import datetime
import os
import subprocess
import sys

from tools.bench.clients import log
from tools.bench.settings import BIN, ROOT


def ensure_matplotlib():
    try:
        import matplotlib  # noqa: F401

        return True
    except ImportError:
        log("installing matplotlib into %s (for bench/throughput.png only)" % os.path.dirname(BIN))
        requirements = os.path.join(ROOT, "requirements-bench.txt")
        result = subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "-r", requirements],
            capture_output=True,
            text=True,
        )
        if result.returncode:
            log("  matplotlib install failed, no plot: %s" % result.stderr.strip()[-500:])
            return False
        import importlib

        importlib.invalidate_caches()
        return True


def write_plot(path, clients, figures, commit):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [c for c in clients if not c.error]
    labels = [c.short for c in rows]
    y = list(range(len(rows)))
    fig, axes = plt.subplots(2, 2, figsize=(16, 0.6 * len(rows) * 2 + 3), sharey=True)

    def bars(ax, name, offset, height, label, color, log_scale=False):
        first = True
        for i, c in enumerate(rows):
            s = figures.get(c.key, {}).get(name)
            if not s:
                continue
            v = s["median"]
            err = [[v - s["min"]], [s["max"] - v]]
            ax.barh(i + offset, v, height, xerr=err, capsize=2, color=color, label=label if first else None)
            first = False
            ax.annotate(" %.4g" % v, (max(v, 1) if log_scale else v, i + offset), va="center", fontsize=7)

    ax = axes[0][0]
    bars(ax, "cpu_qos0_20", -0.2, 0.4, "QoS 0", "tab:blue")
    bars(ax, "cpu_qos1_20", 0.2, 0.4, "QoS 1, one at a time", "tab:orange")
    ax.set_title("CPU µs per publish (20 B), publisher process; lower is better")
    ax = axes[0][1]
    bars(ax, "b32_alloc_qos0_20", -0.2, 0.4, "QoS 0", "tab:blue")
    bars(ax, "b32_alloc_qos1_20", 0.2, 0.4, "QoS 1 with its PUBACK", "tab:orange")
    ax.set_title("Heap bytes allocated per publish, 32-bit (20 B)")
    ax = axes[1][0]
    bars(ax, "b32_heap_connect", -0.2, 0.4, "import + connect", "tab:green")
    bars(ax, "b32_import", 0.2, 0.4, "import", "tab:olive")
    ax.set_title("Heap in use, 32-bit, bytes (warm qstr pool)")
    ax = axes[1][1]
    bars(ax, "publish_rate", -0.2, 0.4, "publisher side", "tab:purple", log_scale=True)
    bars(ax, "arrival_rate", 0.2, 0.4, "arrived at a subscriber", "tab:gray", log_scale=True)
    ax.set_xscale("log")
    ax.set_title("QoS 0 msg/s (20 B), log scale: publishing vs arriving")
    for row in axes:
        for ax in row:
            ax.margins(x=0.25)
            ax.legend(fontsize=8, loc="lower right")
        row[0].set_yticks(y)
        row[0].set_yticklabels(labels, fontsize=8)
    axes[0][0].invert_yaxis()
    fig.suptitle(
        "MQTT clients on MicroPython, one run of `python -m tools.bench` (%s, %s); medians, whiskers min-max"
        % (commit, datetime.date.today().isoformat())
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
