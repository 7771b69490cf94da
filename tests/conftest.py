"""Test harness: a private mosquitto per run, and every test in
tests/portable/ run in-process on CPython, as a `micropython` process on the
Unix port (and, where a module asks, under a board-sized heap), and, unless
its module sets NEEDS_NETWORK = True, on the 32-bit MicroPython (the
WebAssembly port in Node: a board's 31-bit small ints and 2^30 tick period),
one process per module there."""

import ast
import os
import ssl
import sys
import uuid

import pytest
import trustme

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
for path in (os.path.join(ROOT, "lib"), os.path.join(HERE, "portable"), HERE, ROOT):
    if path not in sys.path:
        sys.path.insert(0, path)

from harness import micropython, wasm  # noqa: E402
from tools.mosquitto import Mosquitto  # noqa: E402

MICROPYTHON_TIMEOUT_S = 300


# ---- brokers ---------------------------------------------------------------

_shared = {}


def shared_broker():
    """One broker for the whole run, for tests that do not stop it."""
    if "broker" not in _shared:
        _shared["broker"] = Mosquitto(auth_listener=True).start()
    return _shared["broker"]


def pytest_sessionfinish(session, exitstatus):
    broker = _shared.pop("broker", None)
    if broker:
        broker.close()


def _attach_logs(item, brokers):
    item.stash.setdefault(_BROKERS, []).extend(brokers)


_BROKERS = pytest.StashKey()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed:
        for broker in item.stash.get(_BROKERS, []):
            report.sections.append(("mosquitto log (port %d)" % broker.port, broker.log()[-20000:]))
    return report


@pytest.fixture
def broker(request):
    """The shared broker (never stop it in a test: use make_broker)."""
    b = shared_broker()
    _attach_logs(request.node, [b])
    return b


@pytest.fixture
def make_broker(request):
    """Factory of private brokers, for tests that stop, kill or pause one."""
    made = []

    def make(**kwargs):
        b = Mosquitto(**kwargs).start()
        made.append(b)
        _attach_logs(request.node, [b])
        return b

    yield make
    for b in made:
        b.close()


@pytest.fixture
def tls_files(tmp_path):
    """A CA, a server certificate for localhost / 127.0.0.1 signed by it, a
    client certificate it signed, and a second CA with a client certificate
    of its own; each CA as PEM and as DER."""
    ca, other = trustme.CA(), trustme.CA()
    files = {"ca": tmp_path / "ca.pem", "other": tmp_path / "other-ca.pem"}
    ca.cert_pem.write_to_path(files["ca"])
    other.cert_pem.write_to_path(files["other"])
    issued = (
        ("certfile", "keyfile", "server", ca.issue_cert("localhost", "127.0.0.1")),
        ("client_cert", "client_key", "node", ca.issue_cert("node-kitchen")),
        ("other_client_cert", "other_client_key", "stranger", other.issue_cert("node-kitchen")),
    )
    for cert_name, key_name, stem, cert in issued:
        files[cert_name] = tmp_path / (stem + ".pem")
        files[key_name] = tmp_path / (stem + ".key")
        cert.cert_chain_pems[0].write_to_path(files[cert_name])
        cert.private_key_pem.write_to_path(files[key_name])
    for name in ("ca", "other"):
        der = tmp_path / (files[name].stem + ".der")
        der.write_bytes(ssl.PEM_cert_to_DER_cert(files[name].read_text()))
        files[name + "_der"] = der
    return {name: str(path) for name, path in files.items()}


def _tls_listener(tls_files, **options):
    return dict(cafile=tls_files["ca"], certfile=tls_files["certfile"], keyfile=tls_files["keyfile"], **options)


@pytest.fixture
def tls_broker(make_broker, tls_files):
    return make_broker(tls=_tls_listener(tls_files))


@pytest.fixture
def mutual_tls_broker(make_broker, tls_files):
    """A TLS listener that refuses clients without a certificate from the CA."""
    return make_broker(tls=_tls_listener(tls_files, require_certificate=True))


@pytest.fixture
def spawn():
    """spawn(runtime, script, args, heapsize=None): tests/scripts/<script> (or
    a path) on "cpython" or "micropython"; killed at teardown if still running."""
    from faults.support import Script

    started = []

    def start(runtime, script, args, heapsize=None):
        path = script if os.sep in script else os.path.join("tests", "scripts", script)
        run = Script(runtime, path, args, heapsize)
        started.append(run)
        return run

    yield start
    for run in started:
        run.close()


@pytest.fixture(autouse=True)
def _portable_environment(request, monkeypatch):
    if os.path.dirname(str(request.node.fspath)) == os.path.join(HERE, "portable"):
        b = shared_broker()
        _attach_logs(request.node, [b])
        monkeypatch.setenv("TEST_BROKER_PORT", str(b.port))
        monkeypatch.setenv("TEST_BROKER_AUTH_PORT", str(b.auth_port))
        monkeypatch.setenv("TEST_UNIQUE", uuid.uuid4().hex[:12])


# ---- the same tests on the MicroPython Unix port ---------------------------


def _module_setting(tree, name):
    for n in tree.body:
        if (
            isinstance(n, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == name for t in n.targets)
            and isinstance(n.value, ast.Constant)
        ):
            return n.value.value
    return None


def _test_functions(path):
    with open(path) as f:
        tree = ast.parse(f.read())
    names = [n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")]
    # SMALL_HEAP = True: also run under an ESP32's free RAM; = "pico_w": a Pico W's.
    # NEEDS_NETWORK = True: sockets or a broker, which the 32-bit runtime has not.
    return names, _module_setting(tree, "SMALL_HEAP"), bool(_module_setting(tree, "NEEDS_NETWORK"))


class MicroPythonFile(pytest.File):
    def collect(self):
        names, small_heap, needs_network = _test_functions(self.path)
        variants = [("unix", None)]
        if small_heap is True:
            variants.append(("unix-esp32heap", micropython.HEAP_ESP32))
        elif small_heap == "pico_w":
            variants.append(("unix-picowheap", micropython.HEAP_PICO_W))
        for variant, heapsize in variants:
            for name in names:
                yield MicroPythonItem.from_parent(
                    self, name="%s[%s]" % (name, variant), test_name=name, heapsize=heapsize
                )
        if not needs_network:
            module_run = Wasm32ModuleRun(self.path.stem, names)
            for name in names:
                yield Wasm32Item.from_parent(self, name="%s[wasm32]" % name, test_name=name, module_run=module_run)


class MicroPythonItem(pytest.Item):
    def __init__(self, *, test_name, heapsize, **kwargs):
        super().__init__(**kwargs)
        self.test_name = test_name
        self.heapsize = heapsize

    def runtest(self):
        b = shared_broker()
        _attach_logs(self, [b])
        env = {
            "TEST_BROKER_PORT": str(b.port),
            "TEST_BROKER_AUTH_PORT": str(b.auth_port),
            "TEST_UNIQUE": uuid.uuid4().hex[:12],
        }
        # Under a board-sized heap the test modules load from mpy-cross output
        # too: run as a script, run_one.py would put its own directory (the
        # sources) first on sys.path, and compiling a test module in the heap
        # it measures takes tens of KB a board never spends.
        if self.heapsize:
            script = ["-m", "run_one"]
        else:
            script = ["tests/portable/run_one.py"]
        result = micropython.run(
            script + [self.path.stem, self.test_name],
            heapsize=self.heapsize,
            compiled=self.heapsize is not None,
            env=env,
            timeout=MICROPYTHON_TIMEOUT_S,
        )
        last = result.stdout.strip().splitlines()[-1:] or [""]
        if result.returncode == 0 and last[0].startswith("SKIP"):
            pytest.skip(last[0][5:])
        if result.returncode != 0 or last[0] != "PASS":
            raise MicroPythonFailure(result)

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, MicroPythonFailure):
            r = excinfo.value.result
            return "micropython exited %d\n--- stdout\n%s\n--- stderr\n%s" % (r.returncode, r.stdout, r.stderr)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, None, self.name


class Wasm32ModuleRun:
    """All tests of one module on the 32-bit runtime, in one process, run
    when the first of them is: its outcomes are then handed out per test."""

    def __init__(self, module, names):
        self.module = module
        self.names = names
        self.outcomes = None

    def outcome(self, name):
        if self.outcomes is None:
            self.outcomes = wasm.run_tests(self.module, self.names, timeout=MICROPYTHON_TIMEOUT_S)
        return self.outcomes[name]


class Wasm32Item(pytest.Item):
    def __init__(self, *, test_name, module_run, **kwargs):
        super().__init__(**kwargs)
        self.test_name = test_name
        self.module_run = module_run

    def runtest(self):
        outcome, output = self.module_run.outcome(self.test_name)
        if outcome.startswith("SKIP"):
            pytest.skip(outcome[5:])
        if outcome != "PASS":
            raise Wasm32Failure(output)

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, Wasm32Failure):
            return "32-bit MicroPython (WebAssembly port), %s.%s:\n%s" % (
                self.module_run.module,
                self.test_name,
                excinfo.value.args[0],
            )
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, None, self.name


class Wasm32Failure(Exception):
    pass


class MicroPythonFailure(Exception):
    def __init__(self, result):
        super().__init__(result.stdout)
        self.result = result


def pytest_collect_file(parent, file_path):
    if (
        file_path.suffix == ".py"
        and file_path.name.startswith("test_")
        and str(file_path.parent) == os.path.join(HERE, "portable")
    ):
        return MicroPythonFile.from_parent(parent, path=file_path)
    return None
