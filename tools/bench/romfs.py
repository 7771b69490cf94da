"""This project's heap after import + connect with lib/ in a ROMFS image,
against the same .mpy files on the filesystem, on the Unix port (the
WebAssembly port has no VfsRom). The image is `mpremote romfs build` of the
.mpy files, as `mpremote romfs deploy` would write it to a board's ROMFS
partition; bench/clients/ours_romfs.py measures both ways."""

import json
import os
import subprocess

from tools.bench.settings import BIN, CLIENTS_DIR, MICROPYTHON, ROOT, SCRIPT_TIMEOUT_S
from tools.bench.unixport import last_json_line

SCRIPT = os.path.join(CLIENTS_DIR, "ours_romfs.py")
MPREMOTE = os.path.join(BIN, "mpremote")


def measure(ours, port, tmp):
    """{"files": figures, "romfs": figures, "image_bytes": n}, or {"error": why}."""
    image = os.path.join(tmp, "lib.romfs")
    try:
        built = subprocess.run(
            [MPREMOTE, "romfs", "--no-mpy", "--output", image, "build", ours.compiled],
            capture_output=True,
            text=True,
            timeout=SCRIPT_TIMEOUT_S,
        )
        if built.returncode:
            raise RuntimeError("mpremote romfs build: %s" % (built.stderr or built.stdout).strip()[-500:])
        out = {"image_bytes": os.path.getsize(image)}
        env = dict(os.environ, MICROPYPATH=".frozen:" + CLIENTS_DIR)  # lib/ only where the probe puts it
        for source, path in (("files", ours.compiled), ("romfs", image)):
            cfg = {"port": port, "client_id": "bench-romfs-" + source, "source": source, "path": path}
            result = subprocess.run(
                [MICROPYTHON, SCRIPT, json.dumps(cfg)],
                env=env,
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=SCRIPT_TIMEOUT_S,
            )
            if result.returncode:
                raise RuntimeError("%s: exit %d: %s" % (source, result.returncode, result.stderr.strip()[-500:]))
            out[source] = last_json_line(result.stdout)
        if not out["romfs"]["loaded_from"].startswith("/rom/"):
            raise RuntimeError("the client came from %s, not the ROMFS image" % out["romfs"]["loaded_from"])
        return out
    except Exception as e:  # reported on the page; the other figures stand
        return {"error": "%s: %s" % (type(e).__name__, e)}
