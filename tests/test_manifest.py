"""lib/manifest.py, the MicroPython manifest that freezes lib/ into a
firmware build (README.md, "Freezing lib/ into firmware"), run as the
port's build runs it (MicroPython's tools/manifestfile.py: from lib/, with
include(), module() and package() defined): it freezes every module a
board may load, and what the board's firmware freezes anyway."""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
LIB = os.path.join(ROOT, "lib")
sys.path.insert(0, ROOT)

from tools.deploy import HOST_ONLY  # noqa: E402


class Build:
    """The manifest API, recording what is frozen (paths as on the board)."""

    def __init__(self, board_has_manifest=True):
        self.board_has_manifest = board_has_manifest
        self.included = []
        self.frozen = []

    def include(self, path):
        if path.startswith("$(BOARD_DIR)") and not self.board_has_manifest:
            raise OSError(2, "No such file or directory: %r" % path)  # manifestfile.py wraps it in its own error
        self.included.append(path)

    def module(self, path, base_path=".", opt=None):
        self.frozen.append(path)

    def package(self, path, files=None, base_path=".", opt=None):
        assert files is not None, "a package without a file list freezes whatever lies in it"
        self.frozen.extend(path + "/" + name for name in files)

    def run(self):
        previous = os.getcwd()
        os.chdir(LIB)
        try:
            with open("manifest.py") as f:
                exec(f.read(), {"include": self.include, "module": self.module, "package": self.package})
        finally:
            os.chdir(previous)
        return self


def board_modules():
    found = set()
    for folder, dirs, names in os.walk(LIB):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in names:
            if name.endswith(".py"):
                found.add(os.path.relpath(os.path.join(folder, name), LIB).replace(os.sep, "/"))
    return found - {"manifest.py"} - set(HOST_ONLY)


def test_every_module_a_board_loads_is_frozen_once_and_nothing_host_only():
    frozen = Build().run().frozen
    assert sorted(frozen) == sorted(set(frozen)), "frozen twice: %r" % frozen
    assert set(frozen) == board_modules()
    assert "mqtt/client.py" in frozen and "mqtt/qos2.py" in frozen and "node/node.py" in frozen
    assert "mqtt/broker_codec.py" not in frozen and "manifest.py" not in frozen


def test_the_boards_own_manifest_comes_first_else_the_ports():
    assert Build().run().included == ["$(BOARD_DIR)/manifest.py"]
    assert Build(board_has_manifest=False).run().included == ["$(PORT_DIR)/boards/manifest.py"]
