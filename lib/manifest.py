# A MicroPython manifest that freezes lib/ into the firmware, so that its
# bytecode runs from flash instead of taking the heap (README.md, "Freezing
# lib/ into firmware"). The port's build runs it, from this directory, with
# include(), module() and package() defined (MicroPython's
# tools/manifestfile.py):
#
#   make -C ports/esp32 BOARD=ESP32_GENERIC FROZEN_MANIFEST=$PWD/lib/manifest.py
#
# Not a module a board imports.
# ruff: noqa: F821
# pyright: reportUndefinedVariable=false

import os

# What the firmware freezes without us (asyncio, the network helpers): the
# board's own manifest where it has one (RPI_PICO_W), else the port's
# (ESP32_GENERIC), as the port's build picks when given none.
try:
    include("$(BOARD_DIR)/manifest.py")
except Exception:
    include("$(PORT_DIR)/boards/manifest.py")

# Every module of lib/ a board may load: not this file, nor what only the
# host's tests and tools load (tools/deploy.py leaves it off a board too).
_HOST_ONLY = (
    "manifest.py",
    "mqtt/broker_codec.py",
    "ota/manifest_text.py",
    "compat_cpython.py",
    "netcompat_cpython.py",
)

for _entry in sorted(os.listdir(".")):
    if _entry.endswith(".py"):
        if _entry not in _HOST_ONLY:
            module(_entry)
    elif "." not in _entry and "__init__.py" in os.listdir(_entry):
        package(
            _entry,
            files=[
                name
                for name in sorted(os.listdir(_entry))
                if name.endswith(".py") and _entry + "/" + name not in _HOST_ONLY
            ],
        )
