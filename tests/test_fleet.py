"""tools/fleet.py: the generated board files are valid boards, and a small
fleet on the Unix port against a private mosquitto loses nothing at any
QoS and delivers one reading per node per second."""

import importlib.util
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "lib"))

from node import config  # noqa: E402
from tools import fleet  # noqa: E402


@pytest.mark.parametrize("qos, sensors", [(0, 1), (2, 4)])
def test_generated_board_files_load_as_boards(tmp_path, qos, sensors):
    path = tmp_path / "fleet_board_007.py"
    path.write_text(fleet.board_file(7, 1, qos, sensors, 2, "house"))
    spec = importlib.util.spec_from_file_location("fleet_board_007", path)
    board = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(board)
    c = config.load(board)
    assert (c["ROOM"], c["NODE"], c["DIAGNOSTICS_S"], c["DISCOVERY"]) == ("fleet_007", "fleet-007", 2, False)
    assert [(s["driver"], s["period_s"], s["qos"]) for s in c["SENSORS"]] == [
        (name, 1, qos) for name in fleet.SIMULATED[:sensors]
    ]


def test_small_fleet_loses_nothing_and_delivers_the_expected_rate():
    seconds = 8
    report = fleet.run_fleet(nodes=3, seconds=seconds, qos=(0, 1, 2), diagnostics_s=1, log=lambda text: None)
    assert report["online"] == 3
    assert report["exited"] == {}
    for q in (0, 1, 2):
        stats = report["per_qos"][q]
        assert stats["nodes"] == 1
        assert stats["unknown"] == 0
        # The node's own count: one reading a second while starting, settling
        # (SETTLE_S and a one-second check) and measuring, plus the stop command's.
        assert seconds <= stats["published"] <= seconds + fleet.SETTLE_S + 5, stats
        assert (stats["received"], stats["lost"], stats["duplicates"]) == (stats["published"], 0, 0)
    assert report["rate_msg_s"] == pytest.approx(3.0, abs=0.4)
    assert report["expected_rate_msg_s"] == 3.0
    assert (report["reconnects"], report["dropped"], report["late_nodes"]) == (0, 0, [])
    assert report["no_loss"]
    text = fleet.summary(report)
    assert "QoS 1: 1 nodes" in text and "=> NO LOSS" in text
