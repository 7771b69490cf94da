"""The 32-bit figures: bench/clients/board32.py on the WebAssembly port of
MicroPython (tests/harness/wasm.py runs it in Node), each probe in a fresh
process, every library from .mpy (mpy-cross bytecode). No sockets there:
clients talk to tests/portable/memory_broker.py."""

import json
import os
import sys

from tools.bench.clients import compile_tree, log
from tools.bench.settings import CLIENTS_DIR, FAKES_32, FAKES_DIR, HEAP_32, PORTABLE, ROOT

sys.path.insert(0, os.path.join(ROOT, "tests"))
from harness import wasm  # noqa: E402

SCRIPT = os.path.join(CLIENTS_DIR, "board32.py")
# Python packages on the WebAssembly port that a board's firmware has
# built in, in C: imported before any baseline in every probe, so no
# client is charged for them.
BOARD_BUILTINS = ["binascii", "collections", "collections.defaultdict"]
PACKAGE = wasm.PACKAGE


def available():
    try:
        wasm.node_binary()
        return True
    except RuntimeError:
        return False


def compile_broker(tmp):
    """tests/portable/memory_broker.py as .mpy, alone in a folder to mount."""
    source = os.path.join(tmp, "broker-src")
    os.makedirs(source, exist_ok=True)
    with (
        open(os.path.join(PORTABLE, "memory_broker.py")) as f,
        open(os.path.join(source, "memory_broker.py"), "w") as g,
    ):
        g.write(f.read())
    target = os.path.join(tmp, "mpy32", "broker")
    failures = compile_tree(source, target)
    if failures:
        raise RuntimeError("mpy-cross: %s" % "; ".join(failures))
    return target


def run_probe(cfg, client_dir, lib_dir, broker_dir):
    cfg = dict(cfg, prelude=BOARD_BUILTINS + cfg.get("prelude", []))
    mounts = [(client_dir, "/client")] if client_dir else []
    mounts += [
        (lib_dir, "/lib"),
        (broker_dir, "/broker"),
        (FAKES_32, "/fakes32"),
        (FAKES_DIR, "/fakes"),
        (CLIENTS_DIR, "/bench"),
    ]
    result = wasm.run(SCRIPT, [json.dumps(cfg)], mounts=mounts, heap_bytes=HEAP_32)
    if result.returncode:
        raise RuntimeError(
            "%s: exit %d: %s" % (cfg["probe"], result.returncode, (result.stderr or result.stdout)[-1500:])
        )
    for line in reversed(result.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError("%s: no JSON line in %r" % (cfg["probe"], result.stdout[-500:]))


def measure(clients, settings, tmp):
    """{client key: {figure: value}} on 32 bits. A probe that fails is an
    error for that client's 32-bit figures, not for the run."""
    ours = next(c for c in clients if c.key == "ours")
    broker_dir = compile_broker(tmp)
    lib_dir = ours.compiled
    payloads = settings["payloads"]
    out = {}
    for client in clients:
        if client.error or not (client.imports_32 or client.same_as):
            continue
        figures = out.setdefault(client.key, {})
        try:
            if client.same_as:
                figures.update(out.get(client.same_as, {}))
                continue
            own = None if client.key == "ours" else client.compiled
            imported = run_probe(
                {"probe": "import", "modules": client.imports_32, "prelude": client.prelude_32},
                own,
                lib_dir,
                broker_dir,
            )
            figures["import"] = imported["warm"]
            figures["import_cold"] = imported["cold"]
            figures["import_modules"] = imported["modules"]
            if client.probe_32:
                probe = run_probe(
                    {
                        "probe": client.probe_32,
                        "payloads": payloads,
                        "count": settings["count_32"],
                        "prelude": client.prelude_32,
                    },
                    own,
                    lib_dir,
                    broker_dir,
                )
                figures["connect"] = probe["connect"]
                figures["heap_connect"] = imported["warm"] + probe["connect"]
                for size in payloads:
                    for qos in (0, 1):
                        key = "alloc_qos%d_%d" % (qos, size)
                        figures[key] = probe[key]["per"]
                        figures[key + "_total"] = probe[key]["total"]
                if "connect_node" in probe:
                    figures["heap_connect_node"] = imported["warm"] + probe["connect_node"]
            if client.key == "ours":
                node = run_probe({"probe": "import", "modules": ["node.node"]}, None, lib_dir, broker_dir)
                figures["node_import"] = node["warm"]
                figures["node_import_cold"] = node["cold"]
                store = run_probe({"probe": "store", "count": settings["store_count_32"]}, None, lib_dir, broker_dir)
                figures["store_append"] = store["append"]["per"]
                figures["store_append_total"] = store["append"]["total"] / store["append"]["count"]
                figures["store_replay"] = store["replay"]["per"]
                figures["store_replay_total"] = store["replay"]["total"] / store["replay"]["count"]
        except Exception as e:
            figures["error"] = "%s: %s" % (type(e).__name__, e)
        log("  32-bit %-13s %s" % (client.key, summary(figures)))
    return out


def summary(figures):
    if "error" in figures:
        return "ERROR " + figures["error"][:300]
    parts = ["import %s B" % figures.get("import")]
    if "heap_connect" in figures:
        parts.append("import+connect %s B" % figures["heap_connect"])
    if "alloc_qos0_20" in figures:
        parts.append("per publish QoS 0/1 %s/%s B" % (figures["alloc_qos0_20"], figures["alloc_qos1_20"]))
    if "store_append" in figures:
        parts.append("store append/replay %s/%s B" % (figures["store_append"], figures["store_replay"]))
    return ", ".join(parts)
