"""A TCP fault proxy between a client and mosquitto, for breaking the link on
purpose (CPython asyncio, in a background thread).

    with FaultProxy(broker.port, seed=1) as proxy:
        client connects to 127.0.0.1:proxy.port
        proxy.cut()                     close both sides of every link now
        proxy.black_hole(True)          keep the sockets open, forward nothing
        proxy.stall(True)               stop reading the client's bytes (up)
        proxy.delay_ms(300, "down")     latency on broker -> client bytes
        proxy.fragment(True)            one byte per write, with pauses
        proxy.corrupt(0.001, seed=2)    flip one bit in that share of bytes
        proxy.random_cuts(200)          cut every 100..300 ms (seeded)
        proxy.stats()                   connections, cuts, bytes, ...

Directions: "up" is client -> broker, "down" broker -> client, "both".
Every command is thread-safe and returns once it has taken effect.

A black hole drops every byte both ways, and the closing of either side too:
from outside it looks like a dead route, which only a keepalive can find.
When it is lifted, every link that lost bytes in it is cut, since its byte
stream now has a hole in the middle (a real TCP link would have retransmitted
or timed out). Links opened during the black hole are accepted and connected
to the broker, but nothing passes: a CONNECT gets no CONNACK.

A stall stops *reading* one side's socket (up: the client's; down: the
broker's), as a broker or route that stops draining: the kernel buffers fill
and that side's writes block, which a black hole (it reads and drops) never
causes. Nothing is lost: when it is lifted, reading resumes and the held
bytes go on, in order, on every link still open; a side that closed
meanwhile is seen closing only then. Links opened during a stall are stalled
too. Loopback buffers are large (the reading side's window grows past
100 KB, the writer's send buffer to 4 MB): for a stall to bite within a few
KB, start the proxy with a small `rcvbuf` (the listening socket's SO_RCVBUF,
so every accepted client socket's from the handshake on) and give the
client a small send buffer too, as a board's lwIP has.

    with FaultProxy(broker.port, rcvbuf=4096) as proxy:
        proxy.stall(True)               the client's writes block within ~20 KB
        proxy.stall(False)              ... and go on, nothing lost
"""

import asyncio
import random
import socket
import threading

UP = "up"
DOWN = "down"
BOTH = "both"
_DIRECTIONS = (UP, DOWN)
_READ_SIZE = 65536
_COMMAND_TIMEOUT_S = 5
_CONNECT_TIMEOUT_S = 2


def _directions(direction):
    if direction == BOTH:
        return _DIRECTIONS
    if direction in _DIRECTIONS:
        return (direction,)
    raise ValueError("direction must be 'up', 'down' or 'both', got %r" % (direction,))


class _Link:
    """One proxied connection: the client's socket and the broker's."""

    def __init__(self, number, client_writer):
        self.number = number
        self.writers = [client_writer]
        self.tainted = False  # lost bytes in a black hole
        self.closed = False

    def set_reading(self, direction, on):
        """Read (or stop reading) the socket whose bytes go that way: the
        client's for up, the broker's for down. True if it had that socket."""
        side = 0 if direction == UP else 1
        if side >= len(self.writers):
            return False
        transport = self.writers[side].transport
        if on:
            transport.resume_reading()
        else:
            transport.pause_reading()
        return True

    def abort(self):
        # abort(), not close(): what is still buffered is lost, as on a cut cable.
        self.closed = True
        for writer in self.writers:
            writer.transport.abort()


class FaultProxy:
    def __init__(self, target_port, target_host="127.0.0.1", seed=0, rcvbuf=None):
        self.target_host = target_host
        self.target_port = target_port
        self.port = None
        self._seed = seed
        self._rcvbuf = rcvbuf
        self._loop = None
        self._thread = None
        self._server = None
        self._links = []
        self._tasks = set()  # every task of every link, for shutdown
        self._chaos_task = None
        self._black_hole = False
        self._stalled = {UP: False, DOWN: False}
        self._flowing = {UP: asyncio.Event(), DOWN: asyncio.Event()}  # set unless stalled
        self._delay_s = {UP: 0.0, DOWN: 0.0}
        self._fragment = {UP: False, DOWN: False}
        self._fragment_pause_s = 0.001
        self._corrupt = {UP: 0.0, DOWN: 0.0}
        self._corrupt_rng = random.Random(seed)
        self._counts = {
            "connections": 0,
            "cuts": 0,  # links closed by the proxy (cut, random cuts, end of a black hole)
            "cut_commands": 0,
            "upstream_failures": 0,  # broker refused or did not answer the TCP connect
            "bytes_up": 0,
            "bytes_down": 0,
            "dropped_bytes": 0,  # swallowed by a black hole
            "corrupted_bytes": 0,
        }

    # ---- lifecycle -----------------------------------------------------

    def start(self):
        ready = threading.Event()
        failure = []

        def run():
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                for d in _DIRECTIONS:
                    self._flowing[d].set()
                listening = self._listening_socket()
                self._server = loop.run_until_complete(asyncio.start_server(self._accept, sock=listening))
                self.port = self._server.sockets[0].getsockname()[1]
            except Exception as e:  # noqa: BLE001 - reported to start()'s caller
                failure.append(e)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._thread = threading.Thread(target=run, name="fault-proxy", daemon=True)
        self._thread.start()
        if not ready.wait(_COMMAND_TIMEOUT_S):
            raise RuntimeError("fault proxy did not start within %d s" % _COMMAND_TIMEOUT_S)
        if failure:
            raise failure[0]
        return self

    def close(self):
        if self._loop is None or self._thread is None:
            return
        if self._loop.is_running():
            try:
                self._call(self._shutdown())
            finally:
                self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(_COMMAND_TIMEOUT_S)
        self._thread = None

    def _listening_socket(self):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if self._rcvbuf:
            # Set before listen(): accepted sockets inherit it, and their
            # advertised window is small from the handshake on.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self._rcvbuf)
        sock.bind(("127.0.0.1", 0))
        return sock

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    async def _shutdown(self):
        self._stop_chaos()
        self._server.close()
        for link in list(self._links):
            link.abort()
        tasks = [t for t in self._tasks if not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=_COMMAND_TIMEOUT_S)
        self._links = []

    def _call(self, coroutine):
        # Run a coroutine on the proxy's loop from the test's thread, and wait for it.
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(_COMMAND_TIMEOUT_S)

    # ---- commands ------------------------------------------------------

    def cut(self):
        """Close both sides of every open link now. Returns how many."""
        return self._call(self._cut_all())

    def black_hole(self, on):
        """On: forward nothing either way, sockets stay open. Off: forward
        again, and cut every link that lost bytes meanwhile."""
        return self._call(self._set_black_hole(bool(on)))

    def stall(self, on, direction=UP):
        """On: stop reading that side's socket on every link, so its writes
        block once the kernel buffers are full. Off: read again; the held
        bytes go on, nothing lost. Returns how many links it changed."""
        return self._call(self._set_stall(bool(on), _directions(direction)))

    def delay_ms(self, ms, direction=BOTH):
        """Latency added to every chunk in that direction (order kept; the
        throughput is not limited)."""
        for d in _directions(direction):
            self._delay_s[d] = ms / 1000

    def fragment(self, on, direction=BOTH, pause_ms=1):
        """Forward one byte per write, pause_ms apart, so that the peer reads
        packets in pieces."""
        self._fragment_pause_s = pause_ms / 1000
        for d in _directions(direction):
            self._fragment[d] = bool(on)

    def corrupt(self, probability, seed=None, direction=BOTH):
        """Flip one random bit in each forwarded byte with this probability."""
        if seed is not None:
            self._corrupt_rng = random.Random(seed)
        for d in _directions(direction):
            self._corrupt[d] = float(probability)

    def random_cuts(self, every_ms, seed=None):
        """Cut every link at random intervals of 0.5..1.5 x every_ms, from a
        seeded generator; every_ms None or 0 stops it."""
        return self._call(self._set_chaos(every_ms, self._seed if seed is None else seed))

    def clear(self):
        """No delay, no fragmentation, no corruption, no random cuts, no black
        hole, no stall."""
        self.random_cuts(None)
        self.stall(False, BOTH)
        self.delay_ms(0)
        self.fragment(False)
        self.corrupt(0)
        self.black_hole(False)

    def stats(self):
        counts = dict(self._counts)
        counts["open"] = sum(1 for link in list(self._links) if not link.closed)
        return counts

    @property
    def connections(self):
        return self._counts["connections"]

    @property
    def cuts(self):
        return self._counts["cuts"]

    # ---- on the loop ---------------------------------------------------

    async def _cut_all(self):
        self._counts["cut_commands"] += 1
        n = 0
        for link in list(self._links):
            if not link.closed:
                link.abort()
                n += 1
        self._counts["cuts"] += n
        return n

    async def _set_black_hole(self, on):
        self._black_hole = on
        if on:
            return 0
        n = 0
        for link in list(self._links):
            if link.tainted and not link.closed:
                link.abort()
                n += 1
        self._counts["cuts"] += n
        return n

    async def _set_stall(self, on, directions):
        n = 0
        for d in directions:
            self._stalled[d] = on
            if on:
                self._flowing[d].clear()
            else:
                self._flowing[d].set()
            for link in list(self._links):
                if not link.closed and link.set_reading(d, not on):
                    n += 1
        return n

    async def _set_chaos(self, every_ms, seed):
        self._stop_chaos()
        if every_ms:
            self._chaos_task = self._spawn(self._chaos(every_ms / 1000, random.Random(seed)))

    def _stop_chaos(self):
        if self._chaos_task is not None:
            self._chaos_task.cancel()
            self._chaos_task = None

    async def _chaos(self, every_s, rng):
        while True:
            await asyncio.sleep(rng.uniform(0.5, 1.5) * every_s)
            await self._cut_all()

    def _spawn(self, coroutine):
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _accept(self, client_reader, client_writer):
        self._tasks.add(asyncio.current_task())
        try:
            await self._serve(client_reader, client_writer)
        except asyncio.CancelledError:
            # At shutdown. Swallowed: asyncio's stream callback would log a
            # cancelled handler task as an error.
            client_writer.transport.abort()
        finally:
            self._tasks.discard(asyncio.current_task())

    async def _serve(self, client_reader, client_writer):
        self._counts["connections"] += 1
        link = _Link(self._counts["connections"], client_writer)
        self._links.append(link)
        if self._stalled[UP]:
            link.set_reading(UP, False)
        self._forget_closed()
        try:
            broker_reader, broker_writer = await asyncio.wait_for(
                asyncio.open_connection(self.target_host, self.target_port), _CONNECT_TIMEOUT_S
            )
        except (TimeoutError, OSError):
            self._counts["upstream_failures"] += 1
            link.abort()
            return
        if link.closed:  # cut while connecting
            broker_writer.transport.abort()
            return
        link.writers.append(broker_writer)
        if self._stalled[DOWN]:
            link.set_reading(DOWN, False)
        for writer in link.writers:
            writer.transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        pumps = [
            self._spawn(self._pump(link, client_reader, broker_writer, UP)),
            self._spawn(self._pump(link, broker_reader, client_writer, DOWN)),
        ]
        await asyncio.gather(*pumps, return_exceptions=True)
        if not link.closed and not link.tainted:
            link.abort()

    def _forget_closed(self):
        self._links = [link for link in self._links if not link.closed]

    async def _pump(self, link, reader, writer, direction):
        # Reading and writing are two tasks joined by a queue, so that a delay
        # adds latency without holding back the bytes behind it.
        queue = asyncio.Queue()
        sender = self._spawn(self._send(link, queue, writer, direction))
        loop = asyncio.get_running_loop()
        try:
            while not link.closed:
                # Not even a read call in a stall: the stream reader would
                # resume its paused transport when its buffer drains.
                await self._flowing[direction].wait()
                data = await reader.read(_READ_SIZE)
                if not data:
                    break
                if self._black_hole:
                    link.tainted = True
                    self._counts["dropped_bytes"] += len(data)
                    continue
                if self._corrupt[direction]:
                    data = self._corrupted(data, self._corrupt[direction])
                queue.put_nowait((loop.time() + self._delay_s[direction], data))
        except (OSError, asyncio.IncompleteReadError):
            pass
        queue.put_nowait(None)
        await sender

    async def _send(self, link, queue, writer, direction):
        loop = asyncio.get_running_loop()
        counter = "bytes_" + direction
        try:
            while True:
                item = await queue.get()
                if item is None:
                    break
                due, data = item
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if link.closed:
                    return
                if self._black_hole:
                    link.tainted = True
                    self._counts["dropped_bytes"] += len(data)
                    continue
                if self._fragment[direction]:
                    for i in range(len(data)):
                        if link.closed:
                            return
                        writer.write(data[i : i + 1])
                        await writer.drain()
                        self._counts[counter] += 1
                        await asyncio.sleep(self._fragment_pause_s)
                else:
                    writer.write(data)
                    await writer.drain()
                    self._counts[counter] += len(data)
        except OSError:
            pass
        # One side ended (EOF, error): end the link, unless a black hole
        # swallows the close too (then lifting the hole cuts it).
        if self._black_hole:
            link.tainted = True
        elif not link.closed:
            link.abort()

    def _corrupted(self, data, probability):
        rng = self._corrupt_rng
        out = None
        for i in range(len(data)):
            if rng.random() < probability:
                if out is None:
                    out = bytearray(data)
                out[i] ^= 1 << rng.randrange(8)
                self._counts["corrupted_bytes"] += 1
        return data if out is None else bytes(out)
