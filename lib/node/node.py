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

import gc
import json
import sys

from backoff import Backoff
from compat import mem_free, sleep_ms, ticks_add, ticks_diff, ticks_ms
from mqtt.client import MQTTClient
from node.fixed import format_fixed
from node.ring import Ring
from node.timestamp import format_json, now_s, sync_ntp
from sensors import make as make_sensor

_PAYLOAD_SIZE = 48  # {"v":-12345.67,"t":"2026-11-23T08:00:00Z"} fits
_NTP_RESYNC_MS = 6 * 3600 * 1000  # a board's clock drifts seconds a day
_REBOOT_GRACE_S = 30  # no reboot command taken before the node has been up this long
_TX_MIN = 512  # the smallest transmit buffer: the diagnostics report fits
# With DISCOVERY, the transmit buffer a discovery config goes out of (QoS 0:
# no in-flight slot, see node.announce): the one carrying the whole device
# block is about 650 B for the boards in boards/.
_TX_DISCOVERY = 1024
# Home Assistant's birth message and last will: "online" when it (re)starts,
# the cue to announce again (a broker restarted without persistence has
# forgotten the retained configs, and Home Assistant the readings).
_HA_STATUS_TOPIC = "homeassistant/status"
_OFFLINE_ACK_MS = 2000  # how long a clean shutdown waits for its `offline` to be acknowledged
_ANNOUNCE_GAP_MS = 5000  # Home Assistant's `online` announces at most this often (a flood coalesces)


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
    def __init__(self, config, model="unix", hardware=None, wifi=None, client=None, reset=None, log=print):
        """config: node.config.load(board). hardware: a function (sensor
        settings, bus settings) -> the bus or pin object for the driver.
        reset: called for the `reboot` command."""
        self.config = config
        self.model = model
        self.log = log
        self.wifi = wifi
        self.reset = reset
        prefix, room, name = config["PREFIX"], config["ROOM"], config["NODE"]
        base = "%s/%s/%s" % (prefix, room, name)
        self.status_topic = base + "/status"
        self.diagnostics_topic = base + "/diagnostics"
        self.command_prefix = base + "/set/"
        self.discovery = config["DISCOVERY"]
        # A sleeping node's readings are retained: Home Assistant subscribes
        # to a reading after its discovery config arrives, which is after a
        # first wake's readings went out, and it may restart while the node
        # sleeps. An always-on node's come again within a period.
        self.retain_readings = bool(config["DEEP_SLEEP_S"])
        self._announce_due = False  # discovery configs to publish at the next step
        self._states_due = False  # Home Assistant restarted: the last readings to publish again
        self._announced_at = None  # tick of the last announce; None: since connect, none
        self._report_due = False  # a diagnostics report to publish at the next step
        # ticks_diff measures less than 2^29 ms (6.2 days) on a board, so
        # uptime is counted up a second at a time, not measured from start-up.
        self.uptime_s = 0
        self._uptime_mark = ticks_ms()

        self.sensors = []
        self.channels = []  # every sensor's, in order
        now = ticks_ms()
        for s in config["SENSORS"]:
            bus = hardware(s, config["BUSES"].get(s["bus"])) if hardware else None
            try:
                driver = make_sensor(s["driver"], bus, **s["params"])
            except (ValueError, TypeError) as e:
                # A parameter's value the driver refuses: a board error, named.
                raise ValueError("board SENSORS[%d] (%s) params: %s" % (len(self.sensors), s["driver"], e))
            sensor = Sensor(driver, s, s["period_s"] * 1000, now, len(self.channels))
            self.sensors.append(sensor)
            for k, quantity in enumerate(driver.CHANNELS):
                sensor_name = s["prefix"] + quantity
                if any(c.name == sensor_name for c in self.channels):
                    raise ValueError(
                        "board SENSORS: two sensors publish %r; give one a 'prefix' (e.g. 'outdoor_')" % sensor_name
                    )
                topic = ("%s/%s/%s" % (prefix, room, sensor_name)).encode()
                self.channels.append(Channel(sensor, k, sensor_name, topic, driver.DECIMALS[k], s["qos"]))
        self.payload = bytearray(_PAYLOAD_SIZE)
        self.json_payload = config["PAYLOAD"] == "json"
        self.ntp = config["NTP"] if self.json_payload else None  # only JSON payloads carry the time
        self.next_ntp = now
        self.ntp_backoff = Backoff(10000, 600000)
        self.resolver = _resolver(config)
        self._wifi_ups_seen = -1
        self.ring = Ring(config["BUFFER"])
        self.store = _open_store(config, len(self.channels), log)
        self.store_errors = 0
        self._disconnects_seen = 0
        self.published = 0
        self.sensor_errors = 0
        self.reboot_requested = False
        # Commands from a flood (queued on a persistent session, or sent by
        # anyone who may publish): a reboot is taken once per boot and only
        # after reboot_grace_s up; forced readings (publish-now, interval) at
        # most once per shortest period. The rest are acknowledged, dropped
        # and counted.
        self.reboot_grace_s = _REBOOT_GRACE_S
        self.commands_dropped = 0
        self._forced_at = None
        self._told_dropped = False
        self.next_diagnostics = ticks_add(now, config["DIAGNOSTICS_S"] * 1000)

        # Over-the-air updates, where the board's secrets hold a key: the
        # updater (ota.updater) takes its messages before the commands do.
        self.ota = None
        updater = _updater_module(config, log)
        broker = config["BROKER"]
        if client is None:
            client = MQTTClient(
                name,
                broker["host"],
                broker["port"],
                keepalive=broker["keepalive_s"],
                clean_session=broker["clean_session"],
                username=broker["username"],
                password=broker["password"],
                ssl_context=_tls_context(broker),
                inflight_max=config["INFLIGHT"],
                max_packet=config["MAX_PACKET"],
                # QoS 0 packets go out of this buffer: the diagnostics report
                # (up to ~400 B with its topic) and the discovery configs
                # must fit whatever MAX_PACKET is.
                tx_size=_tx_size(config),
                # An update's chunk arrives whole in the receive buffer.
                rx_size=updater.RX_SIZE if updater is not None else 512,
                # A blocking step must end well before the watchdog would fire.
                connect_timeout_ms=_step_deadline_ms(config["WATCHDOG_MS"]),
                io_timeout_ms=_step_deadline_ms(config["WATCHDOG_MS"]),
                resolver=self.resolver,
            )
            client.on_log = lambda c, u, message: log("mqtt: " + message)
        self.client = client
        if updater is not None:
            self.ota = updater.Updater(
                config, client.publish, log, self._request_reboot, max_message=config["MAX_PACKET"]
            )
        client.will_set(self.status_topic, b"offline", 1, True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_command
        client.on_publish = self._on_publish
        client.start_reconnecting()  # the first connect is a reconnect: retried forever

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

    def _may_announce(self, now):
        # At connect at once; for Home Assistant's `online`, at most once per
        # _ANNOUNCE_GAP_MS: a flood of them is one announce, none is lost.
        return self._announced_at is None or ticks_diff(now, self._announced_at) >= _ANNOUNCE_GAP_MS

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
            sent = announce.announce(self)
        finally:
            _forget_module("announce")
            _forget_module("discovery")
        why = "Home Assistant online" if self._states_due else "connected"
        self.log("discovery: %d configs announced (%s)" % (sent, why))
        self._report_due = True
        if self._states_due:
            self._states_due = False
            for sensor in self.sensors:
                if sensor.has_values:
                    first = sensor.first_channel
                    for k in range(len(sensor.values)):
                        self.publish_reading(first + k, sensor.values[k], sensor.taken)

    def _publish_offline(self):
        """Before a clean DISCONNECT (reboot, deep sleep): the broker drops the
        last will on a DISCONNECT, so the node says `offline` itself, or its
        status would read `online` while it is gone."""
        if not self.client.connected:
            return  # the will says it, or said it already
        try:
            self.client.publish(self.status_topic, b"offline", 1, True)
        except (OSError, ValueError) as e:
            self.log("mqtt: offline status not sent: %r" % (e,))
            return
        self.client.wait_for_acks(_OFFLINE_ACK_MS)

    # ---- commands ------------------------------------------------------

    def _on_command(self, client, userdata, message):
        if self.ota is not None and self.ota.handle(message.topic, message.payload):
            return
        if message.topic == _HA_STATUS_TOPIC:
            if self.discovery and message.payload == b"online":
                self._announce_due = True  # Home Assistant restarted: tell it again
                self._states_due = True
            return
        if not message.topic.startswith(self.command_prefix):
            return
        key = message.topic[len(self.command_prefix) :]
        value = message.payload
        if message.retain and key == "reboot":
            # A retained reboot would be obeyed at every connect: a reboot loop.
            self.log("command rejected: retained reboot ignored (publish it without retain)")
            return
        try:
            self.command(key, value)
        except ValueError as e:
            self.log("command rejected: %s" % e)

    def command(self, key, value):
        if key == "interval":
            seconds = _parse_seconds(value)
            now = ticks_ms()
            forced = self._may_force_readings(now)
            period = seconds * 1000
            for sensor in self.sensors:
                sensor.period_ms = period
                if forced:
                    sensor.next_start = now  # the new period starts with a reading now
                elif ticks_diff(sensor.next_start, now) > period:
                    sensor.next_start = ticks_add(now, period)  # forced lately: within the new period
            self.log("command: interval now %d s" % seconds)
            if self.discovery:
                self._report_due = True  # Home Assistant's interval number reads it from the report
        elif key == "publish-now":
            now = ticks_ms()
            if not self._may_force_readings(now):
                self._drop_command("publish-now", "readings were forced less than a period ago")
                return
            for sensor in self.sensors:
                sensor.next_start = now
        elif key == "reboot":
            if self.reset is None:
                raise ValueError("reboot is not available on this board")
            if self.reboot_requested:
                self._drop_command("reboot", "a reboot is already under way")
                return
            if self.uptime_s < self.reboot_grace_s:
                # Else each boot would take one queued reboot of a flood, ack
                # it and reboot: a storm lasting as long as the queue.
                why = "up %d s, reboots are taken after %d s" % (self.uptime_s, self.reboot_grace_s)
                self._drop_command("reboot", why)
                return
            self.log("command: reboot")
            self._request_reboot()
        else:
            raise ValueError("unknown command %r (known: interval, publish-now, reboot)" % key)

    def _request_reboot(self):
        # Not from inside a callback: the PUBACK of the message that asked
        # goes out when it returns, and a QoS 1 message not acknowledged
        # comes back after the restart (persistent session). step() reboots.
        self.reboot_requested = True

    def _may_force_readings(self, now):
        """True, and noted, when readings were not forced within the
        shortest sensor period: a flood of commands forces one reading per
        period, not one per command."""
        shortest = min(sensor.period_ms for sensor in self.sensors)
        if self._forced_at is not None and ticks_diff(now, self._forced_at) < shortest:
            return False
        self._forced_at = now
        return True

    def _drop_command(self, key, why):
        self.commands_dropped += 1
        if not self._told_dropped:  # once per boot: a flood must not flood the log too
            self._told_dropped = True
            self.log("command %s dropped: %s (further dropped commands are counted in diagnostics)" % (key, why))

    # ---- the loop ------------------------------------------------------

    def step(self):
        """Do everything that is due; returns ms until something is next due."""
        if self.reboot_requested:
            self._reboot()
        now = ticks_ms()
        if self._announce_due and self.client.connected and self._may_announce(now):
            self._announce(now)
        self._count_uptime(now)
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

    def _count_uptime(self, now):
        # step() runs every second or so: whole seconds since the mark are
        # always well within what ticks_diff measures.
        seconds = ticks_diff(now, self._uptime_mark) // 1000
        if seconds > 0:
            self.uptime_s += seconds
            self._uptime_mark = ticks_add(self._uptime_mark, seconds * 1000)

    def _reboot(self):
        # The poll that delivered the command has sent its PUBACK by now.
        self.flush_store()
        self._publish_offline()
        self.client.disconnect()
        self.reset()

    def _sync_clock(self, now):
        host, port = self.ntp  # set when this runs  # pyright: ignore[reportGeneralTypeIssues]
        if sync_ntp(host, port, self._resolve, _step_deadline_ms(self.config["WATCHDOG_MS"]), self.log):
            self.ntp_backoff.reset()
            self.next_ntp = ticks_add(now, _NTP_RESYNC_MS)
        else:
            self.next_ntp = ticks_add(now, self.ntp_backoff.next_ms())

    def _resolve(self, host, timeout_ms):
        # Without a resolver the name goes to getaddrinfo, deadline or not.
        return self.resolver.resolve(host, timeout_ms) if self.resolver is not None else host

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
        taken = sensor.taken = now_s() if self.json_payload else 0
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
            taken = now_s() if self.json_payload else 0
        store = self.store
        if store is not None and (store.unsent or not self._can_send(channel)):
            try:
                store.append(channel, value, taken)
                return
            except OSError as e:  # flash full or failing: the RAM ring keeps it
                self._store_failed(e)
        if self.ring.count or not self._can_send(channel):
            self.ring.push(channel, value, taken)
            return
        self._send(channel, value, taken)

    def _can_send(self, index):
        client = self.client
        return client.connected and (self.channels[index].qos == 0 or client.session.inflight_free() > 0)

    def _send(self, index, value, taken):
        channel = self.channels[index]
        if self.json_payload:
            n = format_json(self.payload, value, channel.decimals, taken)
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
        gc.collect()  # so "free_heap" is what is free, not what awaits collection
        report = {
            "uptime_s": self.uptime_s,
            "free_heap": mem_free(),
            "rssi": self.wifi.rssi() if self.wifi else 0,
            "reconnects": self.client.connects - 1 if self.client.connects else 0,
            "dropped": self.ring.dropped + (self.store.dropped if self.store else 0),
            "buffered": self.ring.count + (self.store.count if self.store else 0),
            "store_errors": self.store_errors,
            "sensor_errors": self.sensor_errors,
            "published": self.published,
            # QoS 2 messages the broker completed with PUBACK: it serves QoS 2 as QoS 1.
            "qos2_downgraded": self.client.session.qos2_downgraded,
            "commands_dropped": self.commands_dropped,
            # The shortest sensor period: what the `interval` command sets for all.
            "interval_s": min(sensor.period_ms for sensor in self.sensors) // 1000,
        }
        # Retained: Home Assistant's diagnostic entities subscribe after the
        # first report went out, and a sleeping node reports once per wake.
        self.client.publish(self.diagnostics_topic, json.dumps(report), 0, True)

    # ---- battery boards ------------------------------------------------

    def cycle_and_sleep(self, deepsleep, ack_timeout_ms=10000, connect_timeout_ms=30000):
        """One wake cycle: connect, announce, read every sensor, publish
        (retained), report, wait for the acks, say `offline`, then
        deepsleep(ms). What is not acknowledged is logged."""
        deadline = ticks_add(ticks_ms(), connect_timeout_ms)
        while not self.client.connected and ticks_diff(deadline, ticks_ms()) > 0:
            if self.wifi is None or self.wifi.poll(ticks_ms()):
                self.client.poll(100)
            else:
                sleep_ms(100)
        now = ticks_ms()
        if self._announce_due and self.client.connected:
            self._announce(now)
        for sensor in self.sensors:
            sensor.next_start = now
        while True:
            wait = self._sensors_due(ticks_ms())
            if all(sensor.read_at is None for sensor in self.sensors):
                break
            sleep_ms(wait if wait < 100 else 100)
        self.drain_ring()
        if self._report_due or self.config["DIAGNOSTICS_S"]:
            self._report_due = False
            self._publish_diagnostics()  # once per wake
        if not self.client.wait_for_acks(ack_timeout_ms):
            self.log("deep sleep: %d messages unacknowledged" % self.client.session.inflight_count())
        self.flush_store()  # unacknowledged readings are replayed after the wake-up
        self._publish_offline()  # asleep, it is not connected: Home Assistant's status sensor says so
        self.client.disconnect()
        deepsleep(self.config["DEEP_SLEEP_S"] * 1000)


def _open_store(config, channels, log):
    """The board's flash store, or None (no STORE, or the filesystem failed:
    then readings wait in the RAM ring only)."""
    settings = config.get("STORE")
    if not settings:
        return None
    from node.store import FlashStore  # only boards with a STORE pay for its code

    try:
        store = FlashStore(
            settings["path"],
            capacity=settings["capacity"],
            policy=settings["policy"],
            channels=channels,
            flush_every=settings["flush_every"],
            flush_ms=settings["flush_s"] * 1000,
            # Unacknowledged at once: the client's window plus QoS 0 readings between them.
            window=2 * config["INFLIGHT"],
        )
    except OSError as e:
        log("store: cannot open %s (%s): readings wait in RAM only" % (settings["path"], e))
        return None
    if store.recovered or store.torn:
        log("store: %d readings kept across the reset (%d torn)" % (store.recovered, store.torn))
    return store


def _updater_module(config, log):
    """ota.updater where the board's secrets hold OTA_KEY, or None (its code
    and the larger receive buffer cost RAM a board without updates keeps)."""
    if not config.get("OTA"):
        return None
    if config["DEEP_SLEEP_S"]:
        # Awake for seconds at a time, a sleeping node would take an update
        # in pieces across wakes, if the host kept sending that long.
        log("ota: OTA_KEY is set, but updates need an always-on node (DEEP_SLEEP_S is %d)" % config["DEEP_SLEEP_S"])
        return None
    try:
        from ota import updater
    except ImportError as e:  # a board deployed without lib/ota
        log("ota: OTA_KEY is set but lib/ota is missing (%r): updates are off" % (e,))
        return None
    return updater


def _resolver(config):
    """A DNS resolver with deadlines where the board has a DNS server (its
    own DNS setting, or the Wi-Fi's from DHCP); None: getaddrinfo."""
    if config["DNS"] is None and config["WIFI"] is None:
        return None
    from dns import Resolver

    # Without a DNS setting, the server comes from DHCP: step() sets it once
    # the Wi-Fi is up, before the client may connect.
    server, port = config["DNS"] or ("0.0.0.0", 53)
    return Resolver(server, port)


def _forget_module(name):
    # A module of this package, out of sys.modules and the package: its code
    # is garbage (firmware/main.py does the same with the board file checks).
    sys.modules.pop("node." + name, None)
    package = sys.modules.get("node")
    if package is not None and hasattr(package, name):
        delattr(package, name)


def _tx_size(config):
    size = config["MAX_PACKET"] if config["MAX_PACKET"] > _TX_MIN else _TX_MIN
    if config["DISCOVERY"] and size < _TX_DISCOVERY:
        size = _TX_DISCOVERY
    return size


def _step_deadline_ms(watchdog_ms):
    return 10000 if not watchdog_ms else min(10000, watchdog_ms // 2)


def _parse_seconds(value):
    try:
        seconds = int(value)
    except ValueError:
        raise ValueError("interval must be whole seconds, got %r" % (value,))
    if not 1 <= seconds <= 86400:
        raise ValueError("interval must be 1 to 86400 s, got %d" % seconds)
    return seconds


def _tls_context(broker):
    if not broker["tls"]:
        return None
    from netcompat import tls_context

    return tls_context(cafile=broker["ca"], certfile=broker["cert"], keyfile=broker["key"])
