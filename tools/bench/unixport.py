"""Running one client's bench script on the MicroPython Unix port
(bench/clients/<client>.py, one JSON line out): the main run (heap, bytes
and CPU time per publish) and the QoS 0 arrival run, timed by a subscriber
on the host."""

import json
import os
import subprocess
import time

from tools.bench.settings import CLIENTS_DIR, MICROPYTHON, ROOT, SCRIPT_TIMEOUT_S
from tools.bench.subscriber import Subscriber


def environment(client):
    env = dict(os.environ)
    env["MICROPYPATH"] = ":".join([".frozen", CLIENTS_DIR] + client.paths)
    return env


def last_json_line(text):
    for line in reversed(text.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise ValueError("no JSON line in the output")


def script_config(client, settings, port, client_id, mode):
    cfg = {
        "port": port,
        "client_id": client_id,
        "mode": mode,
        "payloads": settings["payloads"],
        "alloc_count": settings["alloc_count"],
        "qos0_count": settings["qos0_count"],
        "qos1_count": settings["qos1_count"],
        "cap_ms": settings["cap_ms"],
        "windows": client.windows,
        "count": settings["arrival_count"],
    }
    cfg.update(client.config)
    return cfg


def run_main(client, cfg):
    result = subprocess.run(
        [MICROPYTHON, client.script, json.dumps(cfg)],
        env=environment(client),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=SCRIPT_TIMEOUT_S,
    )
    if result.returncode:
        raise RuntimeError("exit %d: %s" % (result.returncode, (result.stderr or result.stdout).strip()[-1500:]))
    return last_json_line(result.stdout)


def run_arrival(client, cfg, port):
    """QoS 0 publishes of the rate payload, with a subscriber on the host
    counting them in. Two rates: the publisher's own (its publish loop and
    final flush, timed in the script) and arrival (from the publisher's
    first publish to the last message at the subscriber, one clock). A run
    where any message is missing is an error, not a figure."""
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
    result["arrival_rate"] = cfg["count"] * 1e9 / (last_ns - result["t_start_ns"])
    result["publish_rate"] = cfg["count"] * 1e6 / max(1, result["publish_us"])
    return result


def run_client(client, settings, port, run_index):
    """One round of one client: the main run, then each arrival run. Returns its record."""
    record = {"run": run_index + 1, "client": client.key}
    name = "bench-%s-%d" % (client.key, run_index)
    started = time.monotonic()
    try:
        record["main"] = run_main(client, script_config(client, settings, port, name + "-main", "main"))
        for variant, extra in client.arrivals:
            cfg = script_config(client, settings, port, "%s-qos0%s" % (name, variant), "qos0")
            cfg.update(extra)
            record["arrival" + ("_" + variant if variant else "")] = run_arrival(client, cfg, port)
    except Exception as e:
        record["error"] = "%s: %s" % (type(e).__name__, e)
    record["seconds"] = round(time.monotonic() - started, 2)
    return record
