"""What a board runs (lib/, firmware/, boards/), type-checked with basedpyright
against each board's MicroPython stubs: the mistakes that neither CPython nor
the Unix port can show, because they run on fakes or no board module at all
(a keyword machine.Pin does not take, a WLAN method the port lacks, a string
where ticks_diff wants ticks).

The settings are pyproject.toml's [tool.basedpyright] (ESP32) and
tools/typecheck/rp2.json (RP2); tools/setup.sh installs the stubs, one
directory per board. Where the code is right and a stub or the checker is
wrong, the line says so: `# why  # pyright: ignore[rule]`."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASEDPYRIGHT = os.path.join(os.path.dirname(sys.executable), "basedpyright")
CONFIGS = {
    "esp32": os.path.join(ROOT, "pyproject.toml"),
    "rp2": os.path.join(ROOT, "tools", "typecheck", "rp2.json"),
}
CHECKED = ("lib", "firmware", "boards")

# Each marked line must be reported with that rule, and nothing else may be.
MISUSE = """\
import datetime  # expect: reportMissingImports (CPython's, not MicroPython's)
import machine
import network
import time

from compat import ticks_diff

machine.Pin(4, mode=machine.Pin.OUT, bogus=1)  # expect: reportCallIssue
network.WLAN(network.STA_IF).no_such_method()  # expect: reportAttributeAccessIssue
time.ticks_diff("late", time.ticks_ms())  # expect: reportCallIssue
ticks_diff(time.ticks_ms(), "early")  # expect: reportCallIssue (the board's, through lib/compat.py)
machine.Pin(4, machine.Pin.OUT).value(1)
network.WLAN(network.STA_IF).isconnected()
"""
# A module only the other board has: proof that each run reads its own board's stubs.
OTHER_BOARD_ONLY = {"esp32": "rp2", "rp2": "esp32"}


def typecheck(board, *files):
    """basedpyright's JSON report, on the configured files or on `files`."""
    stubs = os.path.join(ROOT, ".venv", "stubs", board, "lib", "site-packages")
    # Without them basedpyright would fall back to the host's Python and its modules.
    assert os.path.isdir(os.path.join(stubs, "stdlib")), "no %s stubs in %s: run make setup" % (board, stubs)
    assert os.path.exists(BASEDPYRIGHT), "no %s: run make setup" % BASEDPYRIGHT
    result = subprocess.run(
        [BASEDPYRIGHT, "--outputjson", "-p", CONFIGS[board], *files],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    try:
        return json.loads(result.stdout)
    except ValueError:
        raise AssertionError("basedpyright exited %d:\n%s%s" % (result.returncode, result.stdout, result.stderr))


def findings(report):
    """(path relative to the repo, line, rule, first line of the message) per error or warning."""
    return [
        (
            os.path.relpath(d["file"], ROOT),
            d["range"]["start"]["line"] + 1,
            d.get("rule", ""),
            d["message"].splitlines()[0],
        )
        for d in report["generalDiagnostics"]
        if d["severity"] in ("error", "warning")
    ]


def board_sources():
    return [
        os.path.join(folder, name)
        for top in CHECKED
        for folder, _, files in os.walk(os.path.join(ROOT, top))
        for name in files
        if name.endswith(".py")
    ]


@pytest.mark.parametrize("board", sorted(CONFIGS))
def test_board_code_passes_the_boards_stubs(board):
    report = typecheck(board)
    found = findings(report)
    assert not found, "\n".join("%s:%d: %s: %s" % f for f in found)
    # Every file, so that a config matching nothing cannot pass.
    assert report["summary"]["filesAnalyzed"] == len(board_sources())


@pytest.mark.parametrize("board", sorted(CONFIGS))
def test_board_api_misuse_is_reported(board, tmp_path):
    source = MISUSE + "import %s  # expect: reportMissingImports\n" % OTHER_BOARD_ONLY[board]
    path = tmp_path / "misuse.py"
    path.write_text(source)
    expected = {
        n: line.split("# expect: ")[1].split()[0]
        for n, line in enumerate(source.splitlines(), 1)
        if "# expect: " in line
    }
    found = findings(typecheck(board, str(path)))
    reported = {}
    for _, line, rule, _ in found:
        reported.setdefault(line, set()).add(rule)
    missing = {n: rule for n, rule in expected.items() if rule not in reported.get(n, ())}
    assert not missing and set(reported) == set(expected), (
        "expected (line: rule) %s\nreported:\n%s" % (expected, "\n".join("%s:%d: %s: %s" % f for f in found))
    )
