# Small fakes of the board buses, for the sensor driver tests. They run on
# CPython and on the MicroPython Unix port (plain classes, no typing), and
# their read paths allocate nothing, so a driver's read() can be measured.
from errno import EIO, ENODEV

# ---- I2C -------------------------------------------------------------------


class FakeI2C:
    """machine.I2C's memory and plain transfers, against fake devices.

    registers[address] is a bytearray(256) for register-mapped devices
    (readfrom_mem_into / writeto_mem); response[address] is what a plain
    read (readfrom_into) returns. An address in neither does not ACK.
    """

    def __init__(self):
        self.registers = {}
        self.response = {}
        self.written = []  # (address, memaddr or None, bytes) for every write
        self.error = None  # an errno: every transfer raises OSError(error)
        self.nack_reads = 0  # the next n plain reads are NACKed (a sensor still measuring)
        self.on_write = None  # on_write(address, memaddr, data) after each write

    def add_registers(self, address, values=None):
        regs = bytearray(256)
        if values:
            for memaddr in values:
                data = values[memaddr]
                regs[memaddr : memaddr + len(data)] = data
        self.registers[address] = regs
        return regs

    def _check(self, address, table):
        if self.error is not None:
            raise OSError(self.error)
        if address not in table:
            raise OSError(ENODEV)

    def readfrom_mem_into(self, address, memaddr, buf):
        self._check(address, self.registers)
        regs = self.registers[address]
        for i in range(len(buf)):
            buf[i] = regs[(memaddr + i) & 0xFF]

    def writeto_mem(self, address, memaddr, buf):
        self._check(address, self.registers)
        regs = self.registers[address]
        for i in range(len(buf)):
            regs[(memaddr + i) & 0xFF] = buf[i]
        self.written.append((address, memaddr, bytes(buf)))
        if self.on_write:
            self.on_write(address, memaddr, bytes(buf))

    def readfrom_into(self, address, buf):
        self._check(address, self.response)
        if self.nack_reads:
            self.nack_reads -= 1
            raise OSError(ENODEV)
        data = self.response[address]
        for i in range(len(buf)):
            buf[i] = data[i] if i < len(data) else 0xFF

    def writeto(self, address, buf):
        self._check(address, self.response)
        self.written.append((address, None, bytes(buf)))
        if self.on_write:
            self.on_write(address, None, bytes(buf))
        return len(buf)


# ---- 1-Wire ----------------------------------------------------------------

_SKIP_ROM = 0xCC
_MATCH_ROM = 0x55
_CONVERT_T = 0x44
_READ_SCRATCHPAD = 0xBE
_WRITE_SCRATCHPAD = 0x4E


def dallas_crc8(data):
    """Dallas/Maxim CRC-8, written apart from the driver's so the test checks it."""
    crc = 0
    for byte in data:
        for _ in range(8):
            if (crc ^ byte) & 1:
                crc = (crc >> 1) ^ 0x8C
            else:
                crc >>= 1
            byte >>= 1
    return crc


def make_rom(serial, family=0x28):
    """An 8-byte ROM code: family, 6 serial bytes (LSB first), CRC."""
    body = bytes([family]) + bytes(serial)
    return body + bytes([dallas_crc8(body)])


class FakeDS18B20:
    """One DS18B20: ROM code, scratchpad, and what a conversion will measure.
    Starts in the datasheet's power-up state: 85 degC (0x0550), TH 0x4B,
    TL 0x46, 12-bit."""

    def __init__(self, rom, raw=0x0191):
        self.rom = bytes(rom)
        self.raw = raw  # temperature register after the next CONVERT T (1/16 degC, 16 bits)
        self.scratchpad = bytearray(b"\x50\x05\x4b\x46\x7f\xff\x0c\x10\x1c")
        self.conversions = 0
        self.noise_low_bits = True  # undefined low bits read as 1 below 12 bits (datasheet: undefined)
        self.convert_works = True  # False: the temperature register keeps its power-on value

    def convert(self):
        self.conversions += 1
        if not self.convert_works:
            return
        raw = self.raw & 0xFFFF
        bits = (self.scratchpad[4] >> 5) & 3  # R1 R0: 0 = 9-bit .. 3 = 12-bit
        undefined = (1 << (3 - bits)) - 1
        if self.noise_low_bits:
            raw |= undefined
        self.scratchpad[0] = raw & 0xFF
        self.scratchpad[1] = raw >> 8
        self.seal()

    def write_byte(self, index, value):
        if index == 2:  # configuration register: bit 7 reads 0, bits 0..4 read 1
            value = (value & 0x60) | 0x1F
        self.scratchpad[2 + index] = value
        self.seal()

    def seal(self):
        self.scratchpad[8] = dallas_crc8(self.scratchpad[0:8])


class FakeOneWire:
    """onewire.OneWire's API (reset, writebyte, readinto, select_rom, scan)
    over FakeDS18B20 devices. Several devices answering at once wired-AND
    their bits, as on a real bus."""

    def __init__(self, *devices):
        self.devices = list(devices)
        self.error = None  # an errno: every call raises OSError(error)
        self.corrupt = None  # (index, xor mask): flip bits of the next scratchpad read
        self.presence = True  # False: reset() sees no presence pulse
        self._state = "idle"
        self._selected = []
        self._rom = bytearray()
        self._written = 0

    def _check(self):
        if self.error is not None:
            raise OSError(self.error)

    def reset(self, required=False):
        self._check()
        self._state = "rom"
        self._selected = []
        present = self.presence and bool(self.devices)
        if required and not present:
            raise OSError(EIO)
        return present

    def writebyte(self, value):
        self._check()
        state = self._state
        if state == "rom":
            if value == _SKIP_ROM:
                self._selected = list(self.devices)
                self._state = "function"
            elif value == _MATCH_ROM:
                self._rom = bytearray()
                self._state = "match"
            else:
                self._state = "idle"
        elif state == "match":
            self._rom.append(value)
            if len(self._rom) == 8:
                self._selected = [d for d in self.devices if d.rom == bytes(self._rom)]
                self._state = "function"
        elif state == "function":
            if value == _CONVERT_T:
                for d in self._selected:
                    d.convert()
                self._state = "idle"
            elif value == _READ_SCRATCHPAD:
                self._state = "read"
            elif value == _WRITE_SCRATCHPAD:
                self._written = 0
                self._state = "write"
            else:
                self._state = "idle"
        elif state == "write":
            for d in self._selected:
                d.write_byte(self._written, value)
            self._written += 1
            if self._written == 3:
                self._state = "idle"

    def write(self, buf):
        for b in buf:
            self.writebyte(b)

    def select_rom(self, rom):
        # As micropython-lib's onewire: reset, MATCH ROM, the 8 ROM bytes.
        self.reset()
        self.writebyte(_MATCH_ROM)
        self.write(rom)

    def readinto(self, buf):
        self._check()
        reading = self._state == "read"
        for i in range(len(buf)):
            byte = 0xFF  # nobody drives the line: the pull-up reads 1s
            if reading:
                for d in self._selected:
                    byte &= d.scratchpad[i] if i < 9 else 0xFF
            buf[i] = byte
        if reading and self.corrupt is not None:
            index, mask = self.corrupt
            buf[index] ^= mask
            self.corrupt = None
        self._state = "idle"

    def scan(self):
        self._check()
        return [bytearray(d.rom) for d in self.devices] if self.presence else []


# ---- DHT22 -----------------------------------------------------------------


class FakeDHTReadinto:
    """Stands in for dht.dht_readinto(pin, buf): copies `frame` (5 bytes) into
    buf, or raises OSError(error) as the C routine does on a timeout."""

    def __init__(self, frame=b"\x00\x00\x00\x00\x00"):
        self.frame = bytes(frame)
        self.error = None
        self.calls = 0

    def __call__(self, pin, buf):
        self.calls += 1
        if self.error is not None:
            raise OSError(self.error)
        for i in range(5):
            buf[i] = self.frame[i]


def dht22_frame(humidity_tenths, temperature_tenths, checksum=None):
    """The 5 bytes an AM2302 sends: RH, T (bit 15 = sign, magnitude), checksum."""
    t = -temperature_tenths | 0x8000 if temperature_tenths < 0 else temperature_tenths
    body = bytes([humidity_tenths >> 8, humidity_tenths & 0xFF, t >> 8, t & 0xFF])
    if checksum is None:
        checksum = sum(body) & 0xFF
    return body + bytes([checksum])


class FakeClock:
    """A ticks_ms() the test moves by hand."""

    def __init__(self, now=0):
        self.now = now

    def __call__(self):
        return self.now


# ---- ADC -------------------------------------------------------------------


class FakeADC:
    """machine.ADC's read_u16(): returns `value`, or the next of `values`."""

    def __init__(self, value=0, values=None):
        self.value = value
        self.values = list(values) if values else []
        self.error = None
        self.reads = 0

    def read_u16(self):
        self.reads += 1
        if self.error is not None:
            raise OSError(self.error)
        if self.values:
            return self.values.pop(0)
        return self.value
