"""The clients compared: which, how each is fetched (PyPI, at bench time,
into a temporary folder: nothing is copied into the project) and compiled
with mpy-cross, as a board loads them, and what their .mpy weighs."""

import glob
import hashlib
import json
import os
import subprocess
import sys
import tarfile
import urllib.request
import zipfile

from tools.bench import context
from tools.bench.settings import (
    BOARD_ARCH,
    CHUMICRO,
    CLIENTS_DIR,
    FAKES_DIR,
    LIB,
    MPY_CROSS,
    MQTT_ASYNC,
    PYPI_SIMPLE,
    UMQTT,
)

PEERS = ("umqtt", "umqtt_nodelay", "mqtt_async", "chumicro")  # the summary's columns, then ours
SUMMARY = PEERS + ("ours", "ours_nagle")
# Like with like for CPU per publish: the socket option decides how many
# segments, and so how much of the kernel's work, each publish costs.
# (our key, the peers with the same setting)
CPU_GROUPS = (
    ("TCP_NODELAY", "ours", ("umqtt_nodelay",)),
    ("Nagle", "ours_nagle", ("umqtt", "mqtt_async", "chumicro")),
)


class Client:
    """One column: a bench script (bench/clients/<script>) run with extra
    config, its QoS 1 windows (besides one at a time), its QoS 0 arrival
    runs, and what the 32-bit runtime measures of it."""

    def __init__(self, key, label, short, script, **options):
        self.key = key
        self.label = label
        self.short = short  # for the plot and the summary's header
        self.script = os.path.join(CLIENTS_DIR, script)
        self.config = options.get("config", {})  # extra script config
        self.windows = options.get("windows", [])  # QoS 1 in-flight windows measured
        self.arrivals = options.get("arrivals", (("", {}),))  # (name, extra config) per QoS 0 arrival run
        self.imports_32 = options.get("imports_32", [])  # modules whose import heap is measured on 32 bits
        self.prelude_32 = options.get("prelude_32", [])  # built into a board: imported before the baseline
        self.probe_32 = options.get("probe_32")  # bench/clients/board32.py probe: connect + per publish
        self.same_as = options.get("same_as")  # another client's sources (and 32-bit figures)
        self.paths = list(options.get("paths", ()))  # extra MICROPYPATH entries (compiled sources, fakes)
        self.source = None  # folder of the client's .py sources
        self.compiled = None  # the same, compiled to .mpy (bytecode)
        self.version = ""
        self.error = None  # why it could not be set up or run


def make_clients(quick):
    raw = Client(
        "raw",
        "raw socket (reference: no client)",
        "raw socket",
        "raw_socket.py",
        windows=[16],
        arrivals=(("", {}), ("batched", {"batch_bytes": 512})),
    )
    ours = Client(
        "ours",
        "this project",
        "this project",
        "ours.py",
        windows=[16, 2],
        arrivals=(("", {"autoflush": True}), ("batched", {"autoflush": False})),
        # The socket transport too (loaded at connect), as on a board; the
        # connect itself goes through the memory broker's transport.
        imports_32=["mqtt.client", "mqtt.transport"],
        prelude_32=["socket"],
        probe_32="ours",
    )
    if quick:
        return [raw, ours]
    umqtt_version = "umqtt.simple %s" % UMQTT[1]
    return [
        Client(
            "umqtt",
            umqtt_version,
            "umqtt.simple",
            "umqtt_simple.py",
            imports_32=["umqtt.simple"],
            prelude_32=["socket", "usocket"],
            probe_32="umqtt",
        ),
        Client(
            "umqtt_nodelay",
            umqtt_version + " + TCP_NODELAY set by the caller",
            "umqtt.simple + TCP_NODELAY",
            "umqtt_simple.py",
            config={"nodelay": True},
            same_as="umqtt",
        ),
        Client(
            "mqtt_async",
            "mqtt_async (micropython-mqtt %s)" % MQTT_ASYNC[1],
            "mqtt_async",
            "mqtt_async_client.py",
            windows=[2],
            paths=[FAKES_DIR],
            imports_32=["mqtt_async"],
            prelude_32=["socket", "network", "machine", "uasyncio"],
        ),
        Client(
            "chumicro",
            "chumicro-mqtt %s" % CHUMICRO[1],
            "chumicro",
            "chumicro.py",
            windows=[16],
            imports_32=["chumicro_mqtt.client", "chumicro_sockets.sockets_factory"],
            prelude_32=["socket"],
            probe_32="chumicro",
        ),
        ours,
        Client(
            "ours_nagle",
            "this project, nodelay=False (Nagle on, as the peers but umqtt.simple + TCP_NODELAY)",
            "this project, nodelay=False",
            "ours.py",
            config={"nodelay": False},
            arrivals=(("", {"autoflush": True}),),
            same_as="ours",
        ),
        raw,
    ]


def run(cmd, **kwargs):
    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("text", True)
    kwargs.setdefault("timeout", 300)
    return subprocess.run(cmd, **kwargs)


def log(message):
    print(message, file=sys.stderr, flush=True)


# ---- fetching ------------------------------------------------------------------


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


# ---- compiling -----------------------------------------------------------------


def compile_tree(source, target, arch=None):
    """Every .py under source to .mpy under target (the layout kept); returns the failures."""
    failures = []
    for folder, _, files in os.walk(source):
        for name in files:
            if not name.endswith(".py"):
                continue
            path = os.path.join(folder, name)
            out = os.path.join(target, os.path.relpath(path, source))[:-3] + ".mpy"
            os.makedirs(os.path.dirname(out), exist_ok=True)
            result = run([MPY_CROSS] + (["-march=" + arch] if arch else []) + ["-o", out, path])
            if result.returncode:
                failures.append("%s: %s" % (os.path.relpath(path, source), result.stderr.strip()))
    return failures


def prepare(clients, tmp):
    """Fetch and compile every client; one that cannot be set up is marked
    with its error and the others go on."""
    steps = {"umqtt": prepare_umqtt, "mqtt_async": prepare_mqtt_async, "chumicro": prepare_chumicro}
    by_key = {c.key: c for c in clients}
    for client in clients:
        try:
            if client.same_as:
                other = by_key[client.same_as]
                if other.error:
                    raise RuntimeError(other.error)
                client.source, client.compiled, client.version = other.source, other.compiled, other.version
            else:
                if client.key == "ours":
                    client.source = LIB
                    client.version = context.git_version()
                elif client.key == "raw":
                    client.version = "MicroPython socket module"
                else:
                    steps[client.key](client, tmp)
                if client.source:
                    client.compiled = os.path.join(tmp, "mpy", client.key)
                    failures = compile_tree(client.source, client.compiled)
                    if failures:
                        log("  %s: mpy-cross failed on %s" % (client.key, "; ".join(failures)))
            if client.compiled:
                client.paths.insert(0, client.compiled)
            log("  %-13s %s" % (client.key, client.version))
        except Exception as e:  # a client that cannot be fetched is reported, the others go on
            client.error = "setup failed: %s: %s" % (type(e).__name__, e)
            log("  %-13s %s" % (client.key, client.error))


def module_file(source, name):
    base = os.path.join(source, *name.split("."))
    for candidate in (base + ".py", os.path.join(base, "__init__.py")):
        if os.path.exists(candidate):
            return candidate
    return None  # frozen or built in (asyncio, socket), or a namespace package


def board_size(client, modules, tmp):
    """{module file: bytes of .mpy for the board} over the modules the
    client had loaded once connected (mpy-cross -march=xtensawin): what a
    board has to hold."""
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
