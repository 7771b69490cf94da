# The sensor node: reads each sensor on its period and publishes every
# reading on <prefix>/<room>/<sensor>; buffers readings while the link is
# down and sends them in order when it is back; announces itself (status,
# Home Assistant discovery, diagnostics) and takes commands. What Home
# Assistant is told lives in node.discovery and node.announce, loaded at the
# first announce and only on a board with DISCOVERY on.
#
# Publishing a reading allocates nothing: topics are built once, numbers are
# formatted into one preallocated bytearray, and the client encodes into
# its own buffers.

import sys

from compat import const, sleep_ms, ticks_add, ticks_diff, ticks_ms
from mqtt.client import MQTTClient
from node.fixed import format_fixed
from node.ring import Ring

try:  # for the type checker: a board has no typing module
    from collections.abc import Callable
    from typing import TYPE_CHECKING, Any

    if TYPE_CHECKING:
        from dns import Resolver
        from node.store import FlashStore
except ImportError:
    pass

# Home Assistant's birth message and last will: "online" when it (re)starts,
# the cue to announce again (a broker restarted without persistence has
# forgotten the retained configs, and Home Assistant the readings).
_HA_STATUS_TOPIC = "homeassistant/status"
_ANNOUNCE_GAP_MS = 5000  # Home Assistant's `online` announces at most this often (a flood coalesces)
_IDENTIFIER_REJECTED = const(2)  # CONNACK's return code for a client id the broker refuses (3.1.1 section 3.2.2.3)


class Sensor:
    """One sensor on the board: its driver, when it is next started and
    read, and the list its driver reads into. Made once; the loop only
    assigns to its attributes, so a reading allocates nothing."""

    def __init__(self, driver, settings, period_ms, next_start, first_channel):
        self.driver = driver
        self.settings = settings  # its entry in the board's SENSORS
        self.period_ms = period_ms
        self.next_start = next_start  # tick when the next measurement is due
        self.read_at = None  # tick when the started measurement is ready, or None
        self.values = [0] * len(driver.CHANNELS)
        self.has_values = False  # values holds a reading (Home Assistant's restart publishes it again)
        self.taken = 0  # now_s() when values were read (JSON payloads carry it), else 0
        self.first_channel = first_channel  # its first channel's index in Node.channels


class Channel:
    """One value a sensor publishes (a BME280 has three): its topic, built
    once, and how it is published. The ring and the store keep readings by
    the channel's index in Node.channels."""

    def __init__(self, sensor, index, name, topic, decimals, qos):
        self.sensor = sensor
        self.index = index  # in the driver's CHANNELS, UNITS, DECIMALS, DEVICE_CLASSES
        self.name = name  # in the topic and in discovery: the sensor's prefix + the driver's channel
        self.topic = topic  # bytes: <prefix>/<room>/<name>
        self.decimals = decimals
        self.qos = qos


class Node:
    # Set by node.build (MicroPython keeps no annotations: they cost no RAM);
    # the ticks it sets are assigned here too, and typed by that.
    status_topic: str
    diagnostics_topic: str
    command_prefix: str
    discovery: bool
    retain_readings: bool
    _announce_due: bool
    _states_due: bool
    _report_due: bool
    uptime_s: int
    sensors: "list[Sensor]"
    channels: "list[Channel]"
    payload: bytearray
    json_payload: bool
    # node.timestamp's, set by node.build only where payloads are JSON: a
    # board sending bare numbers never loads the clock.
    now_s: "Callable[[], int]"
    format_json: "Callable[[bytearray, Any, int, int], int]"
    ntp: "tuple[str, int] | None"
    ntp_backoff: "Any"
    resolver: "Resolver | None"
    _wifi_ups_seen: int
    ring: Ring
    store: "FlashStore | None"
    store_errors: int
    _disconnects_seen: int
    published: int
    sensor_errors: int
    reboot_requested: bool
    reboot_grace_s: int
    commands_dropped: int
    _told_dropped: bool
    ota: "Any"
    client: MQTTClient

    def __init__(self, config, model="unix", hardware=None, wifi=None, client=None, reset=None, log=print):
        """config: node.config.load(board). hardware: a function (sensor
        settings, bus settings) -> the bus or pin object for the driver.
        reset: called for the `reboot` command."""
        self.config = config
        self.model = model
        self.log = log
        self.wifi = wifi
        self.reset = reset
        # Building it (sensors, channels, store, client, updater) is
        # node.build's, loaded for that and forgotten after, with the sensor
        # registry (its drivers stay, held by the sensors).
        from node import build

        try:
            build.build(self, config, hardware, client, log, ticks_ms())
        finally:
            _forget_module("build")
            sys.modules.pop("sensors", None)

    # ---- connection events ---------------------------------------------

    def _on_connect(self, client, userdata, session_present):
        self.log("mqtt: connected to %s:%d (session present: %s)" % (client.host, client.port, session_present))
        client.publish(self.status_topic, b"online", 1, True)
        if self.discovery:
            # Home Assistant's birth message: announce again when it restarts.
            client.subscribe([(self.command_prefix + "+", 1), (_HA_STATUS_TOPIC, 1)])
            self._announce_due = True  # at the next step, out of this callback
            self._announced_at = None
        else:
            client.subscribe(self.command_prefix + "+", 1)
        if self.ota is not None:
            client.subscribe(self.ota.topic_filter, 1)
            self.ota.on_connect()

    def _on_disconnect(self, client, userdata, error):
        self.log("mqtt: link down (%r), retry in %d ms" % (error, client.reconnect_in_ms()))
        if getattr(error, "return_code", 0) == _IDENTIFIER_REJECTED:
            # A broker may take strict client ids only: the next try uses one.
            from node import strict_id

            try:
                strict_id.adopt(client, self.log)
            finally:
                _forget_module("strict_id")
        if client.disconnects != self._disconnects_seen:
            # The link dropped (not a failed reconnect, which would flush at
            # every backoff step): what waits in RAM goes to flash now.
            self._disconnects_seen = client.disconnects
            self.flush_store()

    def _on_publish(self, client, userdata, packet_id):
        if self.store is not None:
            try:
                self.store.acked(packet_id)
            except OSError as e:  # a flash error is not a link error: keep it out of client.poll
                self._store_failed(e)

    def flush_store(self):
        """Write the store's RAM batch and acknowledgements to flash (before a
        reset, deep sleep, or when the link goes down)."""
        if self.store is not None:
            try:
                self.store.flush()
            except OSError as e:
                self._store_failed(e)

    def _store_failed(self, error):
        self.store_errors += 1
        self.log("store: %s" % (error,))

    def _announce(self, now):
        """Home Assistant discovery: every config, retained; then, when Home
        Assistant restarted, the last readings again; and a diagnostics
        report, which also carries the interval its number shows."""
        self._announce_due = False
        self._announced_at = now
        # Only a board with DISCOVERY loads this code, and only while it
        # announces (at connect, when Home Assistant restarts): on the 64-bit
        # Unix port it takes 18 KB, of which 10 KB are the node's again after.
        from node import announce

        try:
            announce.announce_and_republish(self)
        finally:
            _forget_module("announce")
            _forget_module("discovery")
        self._report_due = True

    # ---- commands ------------------------------------------------------

    def _on_command(self, client, userdata, message):
        if self.ota is not None and self.ota.handle(message.topic, message.payload):
            return
        if message.topic == _HA_STATUS_TOPIC:
            if self.discovery and message.payload == b"online":
                self._announce_due = True  # Home Assistant restarted: tell it again
                self._states_due = True
            return
        try:
            _commands().on_message(self, message)
        except Exception as e:  # noqa: BLE001 - as for OTA's messages: none may stop the node's loop
            # A MemoryError loading node.commands on a fragmented heap, or a
            # fault in a handler: the message is dropped and counted (it is
            # acknowledged all the same: a resend would fail alike).
            drop_command(self, "on " + message.topic, repr(e))

    def command(self, key, value):
        """Take a command (node.commands): interval, publish-now, reboot.
        Raises ValueError for one it refuses."""
        _commands().command(self, key, value, ticks_ms())

    def _request_reboot(self):
        # Not from inside a callback: the PUBACK of the message that asked
        # goes out when it returns, and a QoS 1 message not acknowledged
        # comes back after the restart (persistent session). step() reboots.
        self.reboot_requested = True

    # ---- the loop ------------------------------------------------------

    def step(self):
        """Do everything that is due; returns ms until something is next due."""
        if self.reboot_requested:
            self._reboot()
        now = ticks_ms()
        # At connect at once; for Home Assistant's `online`, at most once per
        # _ANNOUNCE_GAP_MS: a flood of them is one announce, none is lost.
        if (
            self._announce_due
            and self.client.connected
            and not recent(now, self._announced_at, _ANNOUNCE_GAP_MS)
        ):
            self._announce(now)
        # Uptime: step() runs every second or so, so whole seconds since the
        # mark are always well within what ticks_diff measures.
        seconds = ticks_diff(now, self._uptime_mark) // 1000
        if seconds > 0:
            self.uptime_s += seconds
            self._uptime_mark = ticks_add(self._uptime_mark, seconds * 1000)
        link_up = self.wifi is None or self.wifi.poll(now)
        if not link_up and self.client.connected:
            self.client.abort(OSError("wifi down"))
        if link_up and self.wifi is not None and self.wifi.reconnects != self._wifi_ups_seen:
            self._wifi_ups_seen = self.wifi.reconnects
            if self.resolver is not None and self.config["DNS"] is None:
                self.resolver.server = self.wifi.dns_server()  # from DHCP, known once associated
            # run() does not poll the client while the Wi-Fi is down, and a
            # reconnect time kept from an outage of 2^29 ms or more would read
            # as up to 6.2 days ahead: with the link back, try the broker now
            # (the Wi-Fi's own jittered backoff keeps a house out of step).
            self.client.start_reconnecting()
        if self.ntp is not None and ticks_diff(now, self.next_ntp) >= 0:
            if link_up:
                self._sync_clock(now)
            else:
                self.next_ntp = now  # stays due through an outage however long, never reads as ahead
        wait = self._sensors_due(now)
        self.drain_ring()
        if self.store is not None:
            try:
                left = self.store.poll(now)
            except OSError as e:
                self._store_failed(e)
                left = -1
            wait = left if 0 <= left < wait else wait
        if self._report_due:
            self._report_due = False
            self._publish_diagnostics()
        if self.config["DIAGNOSTICS_S"]:
            left = ticks_diff(self.next_diagnostics, now)
            if left <= 0:
                self._publish_diagnostics()
                self.next_diagnostics = ticks_add(now, self.config["DIAGNOSTICS_S"] * 1000)
                left = self.config["DIAGNOSTICS_S"] * 1000
            wait = left if left < wait else wait
        if self.ota is not None:
            wait = self._ota_step(wait)
        return wait

    def _ota_step(self, wait):
        ota = self.ota
        if ota.on_trial and self.published and self.client.connected:
            ota.confirm()  # the new release connected and published: it stays
        left = ota.poll()
        return left if left < wait else wait

    def _reboot(self):
        _commands().reboot(self)

    def _sync_clock(self, now):
        # Every 6 h or so: its code (node.clock) is loaded for it and let go after.
        from node import clock

        try:
            clock.sync(self, now)
        finally:
            _forget_module("clock")

    def run(self, cycles=-1, feed=None):
        """Runs the node; cycles < 0 means forever. feed() is called once per
        healthy pass (the watchdog)."""
        while cycles:
            wait = self.step()
            if feed is not None:
                feed()
            if self.wifi is None or self.wifi.is_up():
                self.client.poll(wait if wait < 1000 else 1000)
            else:
                sleep_ms(wait if wait < 250 else 250)
            if cycles > 0:
                cycles -= 1

    def _sensors_due(self, now):
        """Start measurements that are due and read those that are ready.
        Returns ms until the next start or read."""
        wait = 60000
        for sensor in self.sensors:
            ready = sensor.read_at
            if ready is not None and ticks_diff(ready, now) <= 0:
                sensor.read_at = None
                self._read(sensor)
            elif ready is None and ticks_diff(sensor.next_start, now) <= 0:
                self._start(sensor, now)
            due = sensor.read_at if sensor.read_at is not None else sensor.next_start
            left = ticks_diff(due, now)
            wait = left if left < wait else wait
        if not self.client.autoflush:
            self.client.flush()
        return wait if wait > 0 else 0

    def _start(self, sensor, now):
        nxt = ticks_add(sensor.next_start, sensor.period_ms)
        # Fell behind (a long outage, a slow sensor): skip ahead, never burst.
        sensor.next_start = nxt if ticks_diff(nxt, now) > 0 else ticks_add(now, sensor.period_ms)
        try:
            delay = sensor.driver.start()
        except OSError as e:
            self._sensor_failed(sensor, e)
            return
        if delay <= 0:
            self._read(sensor)
        else:
            sensor.read_at = ticks_add(now, delay)

    def _read(self, sensor):
        values = sensor.values
        try:
            sensor.driver.read(values)
        except OSError as e:
            self._sensor_failed(sensor, e)
            return
        sensor.has_values = True
        taken = sensor.taken = self.now_s() if self.json_payload else 0
        first = sensor.first_channel
        for k in range(len(values)):
            self.publish_reading(first + k, values[k], taken)

    def _sensor_failed(self, sensor, error):
        self.sensor_errors += 1
        self.log("sensor %s: %s" % (sensor.settings["driver"], error))

    # ---- publishing ----------------------------------------------------

    def publish_reading(self, channel, value, taken=-1):
        """Publish now if the link is up and nothing older waits; else keep
        it in the ring, in order. channel: its index in self.channels;
        taken: when it was read (JSON payloads), -1: now."""
        if taken < 0:
            taken = self.now_s() if self.json_payload else 0
        store = self.store
        ring = self.ring
        # Order across a store failure: once a reading went to the RAM ring
        # because the store could not keep it, the readings after it go there
        # too until the ring has been sent (drain_ring sends the store's
        # first, so a newer reading in the store would overtake it). The price
        # is capacity: for the rest of such an outage readings wait in RAM, at
        # most BUFFER of them (the ring drops the oldest), not on flash up to
        # the store's capacity; a reset loses them; and the ring keeps every
        # reading even where the store's policy is "latest". A board without
        # a store never gets here: its ring works as it always did.
        if store is not None and not ring.count and (store.unsent or not self._can_send(channel)):
            try:
                store.append(channel, value, taken)
            except OSError as e:  # not kept (flash full or failing): the RAM ring keeps it
                self._store_failed(e)
            else:
                if store.write_error is not None:  # kept; the write is retried
                    self._store_failed(store.write_error)
                    store.write_error = None
                return
        if ring.count or not self._can_send(channel):
            ring.push(channel, value, taken)
            return
        self._send(channel, value, taken)

    def _can_send(self, index):
        client = self.client
        return client.connected and (self.channels[index].qos == 0 or client.session.inflight_free() > 0)

    def _send(self, index, value, taken):
        channel = self.channels[index]
        if self.json_payload:
            n = self.format_json(self.payload, value, channel.decimals, taken)
        else:
            n = format_fixed(self.payload, 0, value, channel.decimals)
        packet_id = self.client.publish(channel.topic, self.payload, channel.qos, self.retain_readings, n)
        self.published += 1
        return packet_id

    def drain_ring(self):
        """Send buffered readings, oldest first, while the link takes them:
        the flash store's first (they are older), then the RAM ring's."""
        store = self.store
        if store is not None:
            try:
                while True:
                    seq = store.oldest()
                    if seq < 0:
                        if store.unsent:
                            return  # its window awaits acks: the ring's (newer) wait too
                        break
                    if not self._can_send(store.channel):
                        return
                    # QoS 0: packet id 0, done at once; QoS 1/2: acked() in _on_publish.
                    store.sent(seq, self._send(store.channel, store.value, store.taken))
            except OSError as e:
                self._store_failed(e)
                return
        ring = self.ring
        while ring.count:
            i = ring.oldest()
            index = ring.channel[i]
            if not self._can_send(index):
                return
            self._send(index, ring.value[i], ring.taken[i])
            ring.pop()

    def _publish_diagnostics(self):
        if not self.client.connected:
            return
        # Its code (node.report) is loaded for each report and let go after.
        from node import report

        try:
            report.publish(self)
        finally:
            _forget_module("report")

    # ---- battery boards ------------------------------------------------

    def cycle_and_sleep(self, deepsleep, ack_timeout_ms=10000, connect_timeout_ms=30000, feed=None):
        """One wake cycle: connect, announce, read every sensor, publish
        (retained), report, wait for the acks, say `offline`, then
        deepsleep(ms) (node.sleep.board_deepsleep). What is not acknowledged
        is logged; feed, the watchdog's, is called at least every second.
        Its code is node.sleep's, loaded only by a board that sleeps."""
        from node import sleep

        sleep.cycle_and_sleep(self, deepsleep, ack_timeout_ms, connect_timeout_ms, feed)


def recent(now, mark, gap_ms):
    """mark (a tick, or None for never) is less than gap_ms before now. On a
    board ticks_diff reads a mark 2**29 ms (6.2 days) or more ago as
    negative: long ago too, not just now."""
    return mark is not None and 0 <= ticks_diff(now, mark) < gap_ms


def drop_command(node, key, why):
    """A command not taken: counted, and logged once per boot (a flood must
    not flood the log too). Here, not in node.commands: a failure to load
    that is dropped through it as well."""
    node.commands_dropped += 1
    if not node._told_dropped:
        node._told_dropped = True
        node.log("command %s dropped: %s (further dropped commands are counted in diagnostics)" % (key, why))


def _commands():
    # Loaded at the first command message and kept: a node never sent one
    # never holds its code.
    from node import commands

    return commands


def _forget_module(name):
    # A module of this package, out of sys.modules and the package: its code
    # is garbage (firmware/main.py does the same with the board file checks).
    sys.modules.pop("node." + name, None)
    package = sys.modules.get("node")
    if package is not None and hasattr(package, name):
        delattr(package, name)


def _step_deadline_ms(watchdog_ms):
    return 10000 if not watchdog_ms else min(10000, watchdog_ms // 2)
