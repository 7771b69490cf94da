"""A private mosquitto on a free 127.0.0.1 port, started and stopped by the
tests (and by `make run`). Its own config, persistence and log live in a
temporary directory; the log is kept so that failures can show it."""

import getpass
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

START_TIMEOUT_S = 10


def find_mosquitto():
    for candidate in (shutil.which("mosquitto"), "/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"):
        if candidate and os.path.exists(candidate):
            return candidate
    raise RuntimeError("mosquitto not found: run `make setup` (it installs the 'mosquitto' package)")


def find_mosquitto_passwd():
    for candidate in (shutil.which("mosquitto_passwd"), "/usr/bin/mosquitto_passwd", "/usr/local/bin/mosquitto_passwd"):
        if candidate and os.path.exists(candidate):
            return candidate
    raise RuntimeError("mosquitto_passwd not found: it comes with the 'mosquitto' package")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def house_acl(prefix="house"):
    """A mosquitto ACL for a house of nodes, each connecting as the user
    named after its NODE: a node may publish readings, its own status,
    diagnostics and Home Assistant discovery, and read only its own command
    topics; users listed after it (`user NAME` blocks appended by the
    caller) get what their own block grants. Anyone else: nothing."""
    return "\n".join(
        [
            "# Every node, its user name being its NODE (mosquitto's %u).",
            "pattern write %s/+/+" % prefix,  # readings: <prefix>/<room>/<quantity>
            "pattern write %s/+/%%u/status" % prefix,
            "pattern write %s/+/%%u/diagnostics" % prefix,
            "pattern read %s/+/%%u/set/#" % prefix,
            # Over-the-air updates: the host's messages in, state and progress out.
            "pattern read %s/+/%%u/ota/in/#" % prefix,
            "pattern write %s/+/%%u/ota/#" % prefix,
            "pattern write homeassistant/+/%u/#",  # discovery: sensors, status, buttons, number
            "pattern read homeassistant/status",
            "",
        ]
    )


def controller_acl(user, prefix="house"):
    """An ACL block for a user who watches every node and may command them
    (Home Assistant, `make run`'s viewer)."""
    return "user %s\ntopic readwrite %s/#\ntopic readwrite homeassistant/#\n" % (user, prefix)


class Mosquitto:
    def __init__(self, persistence=False, tls=None, auth_listener=False, extra_config="", users=None, acl=None):
        """tls: None or a dict with cafile, certfile, keyfile for a TLS listener
        (and require_certificate: True for one that asks clients for theirs).
        auth_listener: a second plain listener that refuses every client
        (CONNACK 5, not authorized), for testing refusals.
        users: {name: password}; with them the main listener refuses
        anonymous clients and checks passwords, and acl (a mosquitto ACL
        file's text, e.g. house_acl() + controller_acl(...)) says who may
        read and write which topics."""
        self.dir = tempfile.mkdtemp(prefix="mosquitto-")
        self.port = free_port()
        self.tls_port = free_port() if tls else None
        self.auth_port = free_port() if auth_listener else None
        self.log_path = os.path.join(self.dir, "mosquitto.log")
        self.proc = None
        lines = [
            "per_listener_settings true",
            "listener %d 127.0.0.1" % self.port,
            "allow_anonymous %s" % ("false" if users else "true"),
            *self._access_control(users, acl),
            "log_dest file %s" % self.log_path,
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
            # Room for the tests' bursts to a persistent session that is away.
            "max_queued_messages 100000",
            "persistence %s" % ("true" if persistence else "false"),
            "persistence_location %s/" % self.dir,
        ]
        if os.geteuid() == 0:
            # Run as root keeps root, instead of dropping to a 'mosquitto' user
            # that cannot write this directory.
            lines.append("user %s" % getpass.getuser())
        if auth_listener:
            lines += ["listener %d 127.0.0.1" % self.auth_port, "allow_anonymous false"]
        if tls:
            lines += [
                "listener %d 127.0.0.1" % self.tls_port,
                "allow_anonymous true",
                "cafile %s" % tls["cafile"],
                "certfile %s" % tls["certfile"],
                "keyfile %s" % tls["keyfile"],
            ]
            if tls.get("require_certificate"):
                # Mutual TLS: a client without a certificate from cafile is refused.
                lines.append("require_certificate true")
        if extra_config:
            lines.append(extra_config)
        self.config_path = os.path.join(self.dir, "mosquitto.conf")
        with open(self.config_path, "w") as f:
            f.write("\n".join(lines) + "\n")

    def _access_control(self, users, acl):
        if not users:
            return []
        passwords = os.path.join(self.dir, "passwords")
        with open(passwords, "w") as f:
            f.write("".join("%s:%s\n" % (name, password) for name, password in users.items()))
        # mosquitto reads hashed passwords only: hash the file in place.
        subprocess.run([find_mosquitto_passwd(), "-U", passwords], check=True, capture_output=True)
        lines = ["password_file %s" % passwords]
        if acl is not None:
            acl_path = os.path.join(self.dir, "acl")
            with open(acl_path, "w") as f:
                f.write(acl)
            lines.append("acl_file %s" % acl_path)
        return lines

    @property
    def address(self):
        return ("127.0.0.1", self.port)

    def start(self):
        self.proc = subprocess.Popen(
            [find_mosquitto(), "-c", self.config_path],
            stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(self.dir, "stderr.log"), "ab"),
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("mosquitto exited at start:\n" + self.log())
            try:
                socket.create_connection(self.address, timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError("mosquitto did not listen within %d s:\n%s" % (START_TIMEOUT_S, self.log()))

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        """Graceful stop (SIGTERM): mosquitto saves its persistence file."""
        if not self.running():
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)

    def kill(self):
        """Abrupt stop (SIGKILL): what a crash or a power cut looks like."""
        if self.running():
            self.proc.kill()
            self.proc.wait(timeout=5)

    def restart(self, graceful=True):
        self.stop() if graceful else self.kill()
        return self.start()

    def pause(self):
        """SIGSTOP: the broker holds its sockets open and answers nothing."""
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self):
        self.proc.send_signal(signal.SIGCONT)

    def log(self):
        parts = []
        for name in ("mosquitto.log", "stderr.log"):
            path = os.path.join(self.dir, name)
            if os.path.exists(path):
                with open(path, errors="replace") as f:
                    parts.append(f.read())
        return "".join(parts)

    def close(self):
        if self.running():
            self.resume()
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()
