"""bench/RESULTS.md from one run's figures."""

from tools.bench.clients import CPU_GROUPS, PEERS, SUMMARY
from tools.bench.figures import best_peer, median, ratio
from tools.bench.settings import BOARD_ARCH


def fmt(value, digits=0):
    if value is None:
        return "–"
    if isinstance(value, float) and digits == 0 and value != int(value) and abs(value) < 10:
        return "%.2f" % value
    return "{:,.{}f}".format(value, digits)


def us(value):
    return fmt(value, 1)


def kb(value):
    return "–" if value is None else "%.1f KB" % (value / 1024)


def cell(s, digits=0):
    """median (min – max) over the rounds."""
    if not s:
        return "–"
    if s["min"] == s["max"]:
        return fmt(s["median"], digits)
    return "%s (%s – %s)" % (fmt(s["median"], digits), fmt(s["min"], digits), fmt(s["max"], digits))


def times(r):
    if r is None:
        return "–"
    return "%.2fx" % r if r < 10 else "%.1fx" % r


class Report:
    def __init__(self, meta, clients, figures, board32, sizes, records, romfs=None):
        self.meta = meta
        self.romfs = romfs or {}
        self.clients = clients
        self.by_key = {c.key: c for c in clients}
        self.f = figures
        self.board32 = board32
        self.sizes = sizes
        self.records = records
        self.lines = []
        self.behind = []
        self.ahead = []

    def add(self, *lines):
        self.lines.extend(lines)

    def m(self, client, name):
        return median(self.f, client, name)

    def s(self, client, name):
        return self.f.get(client, {}).get(name)

    def columns(self):
        return [k for k in SUMMARY if k in self.by_key]

    def peers(self):
        return [k for k in PEERS if k in self.by_key and not self.by_key[k].error]

    def short(self, key):
        return self.by_key[key].short if key in self.by_key else key

    # ---- the summary -------------------------------------------------------

    def compare(self, what, name, unit, show, ours_key="ours", peers=None, setting=None):
        """The 'vs the best peer' cell for a lower-is-better figure, and a
        line for the behind / ahead lists: ours_key against peers (all of
        them by default), both with the socket setting named, if one is."""
        ours = self.m(ours_key, name)
        peer, best = best_peer(self.f, self.peers() if peers is None else peers, name)
        r = ratio(ours, best)
        if r is None:
            return "–"
        text = "%s vs %s's %s" % (times(r), self.short(peer), show(best) + unit)
        line = "%s%s: %s, %s that of %s (the best peer%s: %s)" % (
            what,
            ", " + setting if setting else "",
            show(ours) + unit,
            times(r),
            self.short(peer),
            " with " + setting if setting else "",
            show(best) + unit,
        )
        (self.behind if r > 1.0 else self.ahead).append(line)
        return text

    def compare_cpu(self, what, name):
        """As compare, for CPU per publish: like with like, our client with
        TCP_NODELAY against the peers with it, with Nagle against theirs."""
        cells = []
        rate = name.replace("cpu_", "rate_")
        for setting, ours_key, peers in CPU_GROUPS:
            # Not a peer that takes 10 ms or more a message (umqtt.simple's
            # QoS 1 with Nagle, ~44 ms): a client stalled is no comparison.
            peers = [k for k in peers if k in self.peers() and not _stalled(self.m(k, rate))]
            text = self.compare(what, name, " µs", us, ours_key, peers, setting)
            if text != "–":
                cells.append("%s: %s" % (setting, text))
        return "; ".join(cells) or "–"

    def summary(self):
        cols = self.columns()
        self.add(
            "| | %s | vs the best peer |" % " | ".join(self.short(k) for k in cols),
            "|---|%s---|" % ("---|" * len(cols)),
        )

        def row(label, values, versus):
            self.add("| %s | %s | %s |" % (label, " | ".join(values), versus))

        def qos1_cell(k):
            value = us(self.m(k, "cpu_qos1_20"))
            rate = self.m(k, "rate_qos1_20")
            if rate is not None and rate < 100:
                value += " (but %.0f ms a message: Nagle)" % (1000 / rate)
            return value

        row(
            "CPU µs / publish QoS 0 (20 B)",
            [us(self.m(k, "cpu_qos0_20")) for k in cols],
            self.compare_cpu("CPU per QoS 0 publish", "cpu_qos0_20"),
        )
        row(
            "CPU µs / publish QoS 1, one at a time (20 B)",
            [qos1_cell(k) for k in cols],
            self.compare_cpu("CPU per QoS 1 publish, one at a time", "cpu_qos1_20"),
        )

        def heap32(k):
            full = self.m(k, "b32_heap_connect")
            if full is not None:
                return kb(full)
            imported = self.m(k, "b32_import")
            return "%s (import only: no connect without sockets)" % kb(imported) if imported is not None else "–"

        row(
            "heap after import+connect, 32-bit",
            [heap32(k) for k in cols],
            self.compare("heap after import+connect on 32 bits", "b32_heap_connect", "", kb),
        )
        row(
            ".mpy of the client (%s)" % BOARD_ARCH,
            [kb(self.m(k, "mpy_size")) for k in cols],
            self.compare(".mpy of the client", "mpy_size", "", kb),
        )

        def per_publish(k):
            q0, q1 = self.m(k, "b32_alloc_qos0_20"), self.m(k, "b32_alloc_qos1_20")
            return "–" if q0 is None else "%s / %s" % (fmt(q0), fmt(q1))

        peer, best = best_peer(self.f, self.peers(), "b32_alloc_qos1_20")
        versus = "" if peer is None else "vs %s's %s (the least)" % (self.short(peer), per_publish(peer))
        row("B allocated / publish QoS 0 / QoS 1 with its ack, 32-bit (20 B)", [per_publish(k) for k in cols], versus)

        def window(k):
            c = self.by_key[k]
            parts = ["%s (%d in flight)" % (us(self.m(k, "cpu_qos1_window%d" % w)), w) for w in c.windows]
            return "; ".join(parts) if parts else "– (one at a time only)"

        versus = []
        for peer in self.peers():
            for w in self.by_key[peer].windows:
                r = ratio(self.m("ours", "cpu_qos1_window%d" % w), self.m(peer, "cpu_qos1_window%d" % w))
                if r is not None:
                    versus.append("%s vs %s at %d" % (times(r), self.short(peer), w))
                    line = "CPU per QoS 1 publish with %d in flight: %s µs, %s that of %s with its own window" % (
                        w,
                        us(self.m("ours", "cpu_qos1_window%d" % w)),
                        times(r),
                        self.short(peer),
                    )
                    (self.behind if r > 1.0 else self.ahead).append(line)
        row("CPU µs / publish QoS 1, the client's own window (20 B)", [window(k) for k in cols], "; ".join(versus))
        row(
            "heap after import+connect, Unix port (64-bit)",
            [kb(self.m(k, "heap_connect")) for k in cols],
            self.compare("heap after import+connect on the Unix port", "heap_connect", "", kb),
        )

    def romfs_section(self):
        r = self.romfs
        if not r:
            return
        self.add("", "## This project from a ROMFS image (Unix port, 64-bit)", "")
        if "error" in r:
            self.add("Not measured: %s" % r["error"][:500])
            return
        files, rom = r["files"], r["romfs"]
        self.add(
            "lib/ compiled to .mpy (%s B as an image from `mpremote romfs build`), the client imported from the "
            "filesystem and from a ROMFS image mounted with vfs.VfsRom, each in a fresh process, one after the "
            "other, counted as in the table above (warm qstr pool; the image read into RAM before the baseline, "
            "where a board has it in flash). Bytecode in a ROMFS runs in place, as frozen code does: it needs "
            "MicroPython 1.25 or later built with a ROMFS partition (many boards' stock firmware has none). The "
            "WebAssembly port has no VfsRom, so there is no 32-bit figure."
            % fmt(r["image_bytes"]),
            "",
            "| lib/ as | import, warm pool | import + connect, warm pool |",
            "|---|---|---|",
            "| .mpy files | %s | %s |" % (fmt(files["heap_import"]), fmt(files["heap_connect"])),
            "| ROMFS image | %s | %s (%s of the files' figure) |"
            % (
                fmt(rom["heap_import"]),
                fmt(rom["heap_connect"]),
                "%.2fx" % (rom["heap_connect"] / files["heap_connect"]) if files["heap_connect"] else "?",
            ),
        )

    # ---- the page ----------------------------------------------------------

    def write(self, path):
        meta = self.meta
        s = meta["settings"]
        ours = self.by_key.get("ours")
        self.add(
            "# Benchmark: MQTT clients on MicroPython",
            "",
            "Generated by `%s` on %s. Do not edit: run `make bench` again." % (meta["command"], meta["date"]),
            "",
            "Measured: this project at **%s**. Every figure below comes from this one run: %d round(s) on the"
            " MicroPython Unix port, each running every client once against the same private mosquitto (rotated"
            " order), and one pass on the 32-bit WebAssembly port. Unix-port cells are medians, with (min – max)"
            " over the rounds in the detail tables." % (ours.version if ours else "?", s["runs"]),
            "",
            "**The machine is shared** (%s cores; other test runs were going on meanwhile; load average %s at the"
            " start, %s at the end). Wall-clock rates move with that; CPU time per publish (the publisher process's"
            " own, over N publishes minus N/5) much less. Compare figures only within this page."
            % (
                meta["machine"]["nproc"],
                meta["machine"]["load average at start (1/5/15 min)"],
                meta["machine"]["load average at end (1/5/15 min)"],
            ),
            "",
            "## Summary",
            "",
        )
        self.summary()
        spread = self.spread()
        if spread:
            self.add(
                "",
                "Noise: the rounds of one client differ by up to %.1fx (max / min) in these CPU figures (%s), and a"
                " whole run repeated on a busier or quieter minute moves them further; a difference smaller than"
                " that is not a finding." % spread,
            )
        self.add("", "### Where this project is behind", "")
        self.add(*(["- " + line for line in self.behind] or ["- nowhere in the summary"]))
        self.add("", "### Where it is ahead or level", "")
        self.add(*(["- " + line for line in self.ahead] or ["- nowhere in the summary"]))
        self.add(
            "- allocation: 0 B per publish at QoS 0 and QoS 1 with its ack on 32 bits (memory broker) and on the"
            " Unix port, every payload size; the peers allocate per publish (tables below)."
            if self.zero_allocation()
            else "- allocation: **not 0 B per publish**: see the tables below."
        )
        self.details()
        self.method()
        with open(path, "w") as f:
            f.write("\n".join(self.lines) + "\n")

    def spread(self):
        """(largest max / min over the rounds, which) among the summary's CPU figures."""
        found = []
        for k in self.columns():
            for name in [n for n in self.f.get(k, {}) if n in ("cpu_qos0_20", "cpu_qos1_20") or "window" in n]:
                st = self.s(k, name)
                if name.startswith("cpu_") and st["min"] > 0:
                    found.append((st["max"] / st["min"], "%s, %s" % (self.short(k), name)))
        return max(found) if found else None

    def zero_allocation(self):
        names = [n for n in self.f.get("ours", {}) if n.startswith(("alloc_", "b32_alloc_")) and "_total" not in n]
        return bool(names) and all(self.s("ours", n)["max"] == 0 for n in names)

    def rows(self):
        return [c for c in self.clients if not c.error]

    def details(self):
        sizes = self.meta["settings"]["payloads"]
        self.add("", "## CPU time per publish, by payload size (µs, lower is better)", "")
        self.add(
            "| client | %s |"
            % " | ".join(["QoS 0, %d B" % n for n in sizes] + ["QoS 1 one at a time, %d B" % n for n in sizes]),
            "|---|%s" % ("---|" * (2 * len(sizes))),
        )
        for c in self.rows():
            cells = [cell(self.s(c.key, "cpu_qos0_%d" % n), 1) for n in sizes]
            cells += [cell(self.s(c.key, "cpu_qos1_%d" % n), 1) for n in sizes]
            self.add("| %s | %s |" % (c.label, " | ".join(cells)))
        ours_batched = self.s("ours", "cpu_qos0_batched")
        if ours_batched:
            self.add(
                "",
                "This project with autoflush=False (QoS 0 packets share one write): %s µs per publish (20 B)."
                % cell(ours_batched, 1),
            )

        self.add("", "## QoS 1: one at a time and in each client's own window (20 B)", "")
        self.add(
            "| client | one at a time: CPU µs | msg/s (wall) | window | CPU µs | msg/s (wall) |",
            "|---|---|---|---|---|---|",
        )
        for c in self.rows():
            windows = c.windows or [None]
            for i, w in enumerate(windows):
                first = (
                    [cell(self.s(c.key, "cpu_qos1_20"), 1), cell(self.s(c.key, "rate_qos1_20"))] if i == 0 else ["", ""]
                )
                rest = (
                    [
                        str(w),
                        cell(self.s(c.key, "cpu_qos1_window%d" % w), 1),
                        cell(self.s(c.key, "rate_qos1_window%d" % w)),
                    ]
                    if w
                    else ["– (its API has none)", "", ""]
                )
                self.add("| %s | %s |" % (c.label if i == 0 else "", " | ".join(first + rest)))
        self.add(
            "",
            "Wall-clock rates with a window suffer from mosquitto's own Nagle (its defaults leave it on): when a"
            " client sends a burst and then only waits, the PUBACKs after the first can wait for the client's"
            " delayed ACK (up to 40 ms). It hits every windowed client alike; CPU time does not include waiting.",
        )

        self.add("", "## QoS 0: the publisher's rate and the arrival rate, separately (20 B, msg/s)", "")
        self.add(
            "| client | publisher side (publish loop and final flush) | arrived at a subscriber |",
            "|---|---|---|",
        )
        for c in self.rows():
            for variant, extra in c.arrivals:
                suffix = "_" + variant if variant else ""
                label = c.label
                if c.key == "ours":
                    label += ", autoflush=False (batched)" if variant else ", autoflush=True (one write per publish)"
                elif variant:
                    label += ", packed into %d-byte writes" % extra["batch_bytes"]
                self.add(
                    "| %s | %s | %s |"
                    % (
                        label,
                        cell(self.s(c.key, "publish_rate" + suffix)),
                        cell(self.s(c.key, "arrival_rate" + suffix)),
                    )
                )
        self.add(
            "",
            "The arrival rate is not a client's limit: a raw socket packing its messages into 512-byte writes"
            " publishes many times faster and still arrives at about the same rate, so that ceiling is mosquitto"
            " and the subscriber (a CPython process) on this machine. %s messages per run, every one counted in"
            " (a run missing one is an error)." % fmt(self.meta["settings"]["arrival_count"]),
        )

        self.add("", "## Heap on the Unix port (64-bit)", "")
        self.add(
            "| client | import, first (qstr pool grows) | import, warm pool | import + connect, warm pool"
            " | B / publish QoS 0 (%s) | B / publish QoS 1 with its ack (%s) |"
            % (" / ".join("%d B" % n for n in sizes), " / ".join("%d B" % n for n in sizes)),
            "|---|---|---|---|---|---|",
        )
        for c in self.rows():
            q0 = " / ".join(fmt(self.m(c.key, "alloc_qos0_%d" % n)) for n in sizes)
            q1 = " / ".join(fmt(self.m(c.key, "alloc_qos1_%d" % n)) for n in sizes)
            self.add(
                "| %s | %s | %s | %s | %s | %s |"
                % (
                    c.label,
                    fmt(self.m(c.key, "heap_import_cold")),
                    fmt(self.m(c.key, "heap_import")),
                    fmt(self.m(c.key, "heap_connect")),
                    q0,
                    q1,
                )
            )
        node = self.m("ours", "heap_connect_node")
        if node is not None:
            self.add(
                "",
                "This project with the node's settings (lib/node/node.py with the default board: keepalive 30 s,"
                " persistent session, 16 in flight, MAX_PACKET 512 for the slots and the transmit buffer, the last"
                " will): %s B after import + connect, against %s B with the client's defaults (max_packet 256)."
                % (fmt(node), fmt(self.m("ours", "heap_connect"))),
            )

        self.romfs_section()

        self.add("", "## 32-bit (the WebAssembly port: a board's 31-bit small ints), from .mpy", "")
        self.add(
            "| client | import, first | import, warm pool | import + connect | B / publish QoS 0 (%s)"
            " | B / publish QoS 1 with its ack (%s) |"
            % (" / ".join("%d B" % n for n in sizes), " / ".join("%d B" % n for n in sizes)),
            "|---|---|---|---|---|---|",
        )
        for c in self.rows():
            b = self.board32.get(c.key)
            if not b or c.same_as:
                continue
            if "error" in b:
                self.add("| %s | error: %s | | | | |" % (c.label, b["error"][:300].replace("\n", " ")))
                continue
            q0 = " / ".join(fmt(b.get("alloc_qos0_%d" % n)) for n in sizes) if "alloc_qos0_20" in b else "–"
            q1 = " / ".join(fmt(b.get("alloc_qos1_%d" % n)) for n in sizes) if "alloc_qos1_20" in b else "–"
            self.add(
                "| %s (%s) | %s | %s | %s | %s | %s |"
                % (
                    c.label,
                    ", ".join(c.imports_32),
                    fmt(b.get("import_cold")),
                    fmt(b.get("import")),
                    fmt(b.get("heap_connect")) if "heap_connect" in b else "– (no sockets)",
                    q0,
                    q1,
                )
            )
        b = self.board32.get("ours", {})
        if "node_import" in b:
            self.add(
                "",
                "This project on 32 bits: importing node.node keeps %s B (%s B the first time); the client with the"
                " node's settings, imported and connected, %s B. The node's flash store (node.store.FlashStore, on the"
                " port's in-memory filesystem, flushes included) allocates %s B per stored reading appended and %s B"
                " per reading replayed (oldest, sent, acked)."
                % (
                    fmt(b["node_import"]),
                    fmt(b["node_import_cold"]),
                    fmt(b.get("heap_connect_node")),
                    fmt(b["store_append"]),
                    fmt(b["store_replay"]),
                ),
            )

        self.add("", "## .mpy by module (mpy-cross -march=%s)" % BOARD_ARCH, "")
        for c in self.rows():
            if self.sizes.get(c.key):
                parts = ", ".join("%s %s" % (n, fmt(v)) for n, v in sorted(self.sizes[c.key].items()))
                self.add("- %s: %s" % (c.label, parts))

        unavailable = [c for c in self.clients if c.error]
        errors = [r for r in self.records if "error" in r]
        if unavailable or errors:
            self.add("", "## Errors", "")
            for c in unavailable:
                self.add("- %s: %s" % (c.label, c.error))
            for r in errors:
                self.add("- round %d, %s: %s" % (r["run"], r["client"], r["error"][:500]))

        self.add("", "## Machine and versions", "")
        for key, value in list(self.meta["machine"].items()) + list(self.meta["versions"].items()):
            self.add("- %s: %s" % (key, value))
        for c in self.clients:
            self.add("- client %s: %s" % (c.label, c.version or "–"))

    def method(self):
        s = self.meta["settings"]
        self.add(
            "",
            "## How each figure is taken",
            "",
            "- Every client runs as its own `micropython` process on the Unix port (`bench/clients/<client>.py`),"
            " its library loaded from .mpy files compiled by mpy-cross, topic `house/kitchen/temperature`, payloads"
            " of %s bytes, to mosquitto on 127.0.0.1." % ", ".join(str(n) for n in s["payloads"]),
            "- CPU µs per publish: the publisher process's CPU time (user + system, the first field of"
            " /proc/self/schedstat, in ns), over N publishes minus N/5, divided by the difference (N = %s at QoS 0,"
            " %s at QoS 1), so what a run pays once (a final flush, the last acks, entering an event loop) cancels."
            " The collector stays on: collecting is part of what allocating costs. Waiting for the network is not"
            " CPU time. A QoS 1 run stops after %.0f s (umqtt.simple without TCP_NODELAY: ~44 ms a message);"
            " its figure is then over fewer messages."
            % (fmt(s["qos0_count"]), fmt(s["qos1_count"]), s["cap_ms"] / 1000),
            "- Like with like: QoS 1 one at a time is every client's publish-and-wait-for-the-PUBACK (this project:"
            " publish() then wait_for_acks()); windows are each client's own (chumicro keeps up to 16 in flight,"
            " mqtt_async 2 with sync=False), and this project is run with the same windows (at most 16, and 2).",
            "- umqtt.simple is measured twice: as it comes, and with TCP_NODELAY set by the caller (one"
            " `client.sock.setsockopt(IPPROTO_TCP, TCP_NODELAY, 1)` after connect). umqtt.simple writes a PUBLISH as"
            " four small writes; with Nagle on, its QoS 1 waits ~44 ms a message for the broker's delayed ACK. That"
            " is a socket option, not its code: the comparison of code is with TCP_NODELAY. With it, each of those"
            " four writes leaves as a TCP segment of its own, so its QoS 0 costs more system CPU than with Nagle"
            " on (which coalesces them).",
            "- This project is measured twice as well: with TCP_NODELAY, its default, and with `nodelay=False`"
            " (Nagle on, as umqtt.simple as it comes, mqtt_async and chumicro leave it). The summary's CPU rows"
            " compare each with the peers that have the same setting: with TCP_NODELAY every publish is a segment"
            " the kernel sends and mosquitto wakes for at once, and that costs the publisher more system CPU than"
            " the client's own code (which costs about the same either way). A peer taking 10 ms or more a"
            " message in a row (umqtt.simple's QoS 1 with Nagle) is left out of that comparison.",
            "- Heap per publish: `gc.collect()`, `gc.disable()`, `gc.mem_alloc()` around N = %s publishes and N/5,"
            " after 10 warm-up publishes; the difference over the difference. At QoS 1 the window includes"
            " reading each PUBACK. The measuring loop alone allocates 0 (checked each run)." % fmt(s["alloc_count"]),
            "- Heap after import + connect, with the qstr-pool effect removed: the script imports the client (and"
            " connects and disconnects it, for the modules loaded at connect) once, forgets the modules, then"
            " imports and connects again, counting from a `gc.collect()` before that second import to one after its"
            " CONNACK. Names are interned once per process and the pool never shrinks, so the first import also"
            " pays for pool growth: that figure is in the tables as 'first'. (mqtt_async's first pass only imports:"
            " a connected client's asyncio tasks would keep the first pass alive; what it loads at connect, asyncio,"
            " is frozen, its names in the firmware.) The bench script's own modules and, for mqtt_async, the"
            " `network`/`machine` fakes (built into a board's firmware) are imported before.",
            "- 32-bit: `bench/clients/board32.py` on the WebAssembly port in Node (31-bit small ints, like a board;"
            " its heap grows on demand, so its size is no limit, but `gc.mem_alloc()` deltas are exact), every"
            " library from mpy-cross bytecode, each probe in a fresh process. It has no sockets: this project"
            " connects through its transport seam to `tests/portable/memory_broker.py`, which answers CONNACK and"
            " PUBACK and allocates nothing; umqtt.simple and chumicro-mqtt through `bench/fakes/board32/socket.py`"
            " to the same broker (chumicro given the connected socket, as its `socket=` argument allows, so no"
            " connector object). mqtt_async needs asyncio streams over real sockets to connect: import only."
            " This project's import counts the socket transport (mqtt.transport, netcompat) as on a board."
            " Modules a board has in C but this port has in Python (binascii, collections) are imported first."
            " umqtt.simple + TCP_NODELAY is the same code as umqtt.simple there.",
            "- .mpy size: `mpy-cross -march=%s` over the library modules in `sys.modules` once connected (frozen or"
            " built-in modules such as asyncio and socket are not counted)." % BOARD_ARCH,
            "- mqtt_async on the Unix port: its `_dns_lookup` is given `(host, port)`, the form a board's"
            " getaddrinfo returns and the Unix port's does not; `network`/`machine` come from `bench/fakes/`. It"
            " connects twice (clean, then persistent), as it always does.",
            "- This project's runs use max_packet = tx_size = the largest payload + 64 (2 KB does not fit the"
            " node's MAX_PACKET of 512); its heap figures use the defaults and the node's settings.",
            "",
            "![CPU per publish, bytes per publish and heap per client](throughput.png)",
        )


def _stalled(rate):
    return rate is not None and rate < 100


def write_markdown(path, meta, clients, figures, board32, sizes, records, romfs=None):
    Report(meta, clients, figures, board32, sizes, records, romfs).write(path)
