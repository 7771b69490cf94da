"""The run: set up the clients, run the rounds on the Unix port, the 32-bit
pass, and write results.json, RESULTS.md and throughput.png."""

import argparse
import datetime
import json
import os
import shutil
import sys
import tempfile
import time

from tools.bench import board32, clients, context, plot, romfs, unixport
from tools.bench.clients import log
from tools.bench.figures import aggregate, collect
from tools.bench.report import fmt, write_markdown
from tools.bench.settings import FULL, QUICK, ROOT
from tools.mosquitto import Mosquitto


def rounds(live, settings, port):
    """settings["runs"] rounds; each runs every client once, in a rotated
    order so that no client always goes first."""
    records = []
    for index in range(settings["runs"]):
        shift = index % len(live)
        for client in live[shift:] + live[:shift]:
            record = unixport.run_client(client, settings, port, index)
            log("  round %d %-13s %5.1f s  %s" % (index + 1, client.key, record["seconds"], summary(record)))
            records.append(record)
    return records


def summary(record):
    if "error" in record:
        return "ERROR " + record["error"][:300]
    main = record.get("main", {})

    def cpu(name):
        return "%.1f" % (main[name]["cpu_ns"] / 1000) if name in main else "–"

    def per(name):
        return fmt(main[name]["per"]) if name in main else "–"

    return "CPU µs QoS 0/1 %s/%s, B/publish %s/%s, heap %s B, QoS 0 arrived %s msg/s" % (
        cpu("qos0_20"),
        cpu("qos1_20"),
        per("alloc_qos0_20"),
        per("alloc_qos1_20"),
        fmt(main.get("heap_connect")),
        fmt(record.get("arrival", {}).get("arrival_rate")),
    )


def board_sizes(chosen, records, tmp):
    sizes = {}
    for client in chosen:
        mains = [r["main"] for r in records if r["client"] == client.key and "main" in r]
        if mains and client.source and client.key != "raw":
            try:
                sizes[client.key] = clients.board_size(client, mains[0]["modules"], tmp)
            except RuntimeError as e:
                log("  %s: no board size: %s" % (client.key, e))
    return sizes


def main():
    parser = argparse.ArgumentParser(
        prog="python -m tools.bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="our client and a raw socket, small counts, one round")
    parser.add_argument("--runs", type=int, help="rounds (default 3; --quick 1)")
    parser.add_argument("--out", help="folder for RESULTS.md, results.json, throughput.png (default bench/)")
    parser.add_argument(
        "--clients", help="comma-separated subset of umqtt,umqtt_nodelay,mqtt_async,chumicro,ours,ours_nagle,raw"
    )
    parser.add_argument("--no-plot", action="store_true", help="skip throughput.png (and the matplotlib install)")
    args = parser.parse_args()

    settings = dict(QUICK if args.quick else FULL)
    if args.runs:
        settings["runs"] = args.runs
    out = args.out or os.path.join(ROOT, "bench", *(("out", "quick") if args.quick else ()))
    os.makedirs(out, exist_ok=True)
    started = time.monotonic()
    meta = {
        "command": "python -m tools.bench" + (" --quick" if args.quick else ""),
        "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "settings": settings,
        "machine": context.machine_info(),
        "versions": context.versions(board32.PACKAGE),
    }
    chosen = clients.make_clients(args.quick)
    if args.clients:
        wanted = args.clients.split(",")
        needed = {"umqtt_nodelay": "umqtt", "ours_nagle": "ours"}  # what each shares its sources with
        wanted += [needed[k] for k in wanted if k in needed]
        chosen = [c for c in chosen if c.key in wanted]
    tmp = tempfile.mkdtemp(prefix="mqtt-bench-")
    try:
        log("fetching and compiling the clients into %s" % tmp)
        clients.prepare(chosen, tmp)
        live = [c for c in chosen if not c.error]
        with Mosquitto() as broker:
            log("mosquitto on 127.0.0.1:%d; %d round(s)" % (broker.port, settings["runs"]))
            records = rounds(live, settings, broker.port)
            ours_live = next((c for c in live if c.key == "ours"), None)
            if ours_live is not None:
                log("this project from a ROMFS image and from files (Unix port)")
                in_romfs = romfs.measure(ours_live, broker.port, tmp)
                log("  %s" % (in_romfs.get("error") or "heap after import+connect: files %d B, ROMFS %d B"
                              % (in_romfs["files"]["heap_connect"], in_romfs["romfs"]["heap_connect"])))
            else:
                in_romfs = {}
        for client in live:
            if not any("main" in r for r in records if r["client"] == client.key):
                client.error = "could not run: " + next(r["error"] for r in records if r["client"] == client.key)
        log("32-bit runtime (WebAssembly port)")
        if board32.available() and any(c.key == "ours" and not c.error for c in chosen):
            b32 = board32.measure(chosen, settings, tmp)
        else:
            b32 = {"ours": {"error": "the 32-bit runtime is not installed (make setup)"}}
            log("  " + b32["ours"]["error"])
        sizes = board_sizes(chosen, records, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    figures = aggregate(collect(chosen, records, b32, sizes))
    meta["machine"]["load average at end (1/5/15 min)"] = context.load_average()
    meta["seconds"] = round(time.monotonic() - started, 1)
    results = {
        "meta": meta,
        "clients": {c.key: {"label": c.label, "version": c.version, "error": c.error} for c in chosen},
        "figures": figures,
        "board32": b32,
        "board_sizes": sizes,
        "romfs": in_romfs,
        "runs": records,
    }
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(results, f, indent=1, sort_keys=True)
    write_markdown(os.path.join(out, "RESULTS.md"), meta, chosen, figures, b32, sizes, records, in_romfs)
    if not (args.no_plot or args.quick) and plot.ensure_matplotlib():
        ours = next((c for c in chosen if c.key == "ours"), None)
        plot.write_plot(os.path.join(out, "throughput.png"), chosen, figures, ours.version if ours else "")
    log("wrote %s (%.0f s)" % (out, time.monotonic() - started))
    # Another client that cannot run is reported in RESULTS.md; ours (or the reference) failing is a failure.
    failed = any(c.error for c in chosen if c.key in ("ours", "raw"))
    failed = failed or any(r.get("error") for r in records if r["client"] in ("ours", "raw"))
    return 1 if failed or "error" in b32.get("ours", {}) else 0


if __name__ == "__main__":
    sys.exit(main())
