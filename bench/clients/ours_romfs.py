# This project's client from .mpy files, imported from the filesystem or
# from a ROMFS image (MicroPython 1.25+: bytecode in a ROMFS runs in place,
# from flash on a board, as frozen code does): heap after import + connect,
# as common.import_and_connect counts it. The image is read into RAM before
# any baseline: here it stands for the board's flash. Started by
# tools/bench/romfs.py as
#
#   ours_romfs.py '{"port": ..., "client_id": ..., "source": "files" | "romfs", "path": <folder or image>}'
#
# and prints one JSON line.
import sys

import common

cfg = common.config()
if cfg["source"] == "romfs":
    import vfs

    with open(cfg["path"], "rb") as f:
        image = f.read()
    vfs.mount(vfs.VfsRom(image), "/rom")
    sys.path.insert(0, "/rom")
else:
    sys.path.insert(0, cfg["path"])


def load():
    from mqtt.client import MQTTClient

    return MQTTClient


def connect(MQTTClient):
    client = MQTTClient(cfg["client_id"], common.HOST, cfg["port"], keepalive=60)
    client.connect()
    return client


_, client, heap = common.import_and_connect(load, connect, lambda c: c.disconnect())
loaded_from = sys.modules["mqtt.client"].__file__
client.disconnect()
heap["loaded_from"] = loaded_from
common.emit(heap)
