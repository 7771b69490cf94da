# Maxim DS18B20 temperature sensor on a 1-Wire bus (onewire.OneWire, or any
# object with reset(), writebyte(), readinto(), select_rom() and scan()).
# Names in comments are those of the DS18B20 datasheet (Maxim 19-7487); table
# numbers differ between its revisions, so they are named too.
#
# rom=None: the bus must hold exactly one DS18B20, found by a scan on the
# first start(); give rom (8 bytes, or 16 hex digits as in a board file) when
# several share the bus. Externally powered devices only: parasite power
# would need a strong pull-up during the conversion, which OneWire lacks.
from binascii import unhexlify

from compat import const
from sensors.errors import SensorError, fixed

_FAMILY_DS18B20 = const(0x28)  # ROM code, byte 0 ("64-bit lasered ROM code")
_SKIP_ROM = const(0xCC)
_CONVERT_T = const(0x44)  # "DS18B20 function commands"
_WRITE_SCRATCHPAD = const(0x4E)
_READ_SCRATCHPAD = const(0xBE)
_CONFIG_RESERVED_MASK = const(0x9F)  # configuration register: bit 7 reads 0, bits 0..4 read 1
_CONFIG_RESERVED = const(0x1F)
_POWER_ON_RAW = const(0x0550)  # memory map, power-up state: +85 degC until a conversion ran
_T_MIN = const(-5500)  # -55..+125 degC, "Features"
_T_MAX = const(12500)

# Thermometer resolution configuration table: resolution -> (config register R1 R0 bits, max conversion time in ms
# rounded up from 93.75 / 187.5 / 375 / 750, mask of the bits undefined at that resolution).
_RESOLUTIONS = {
    9: (0x1F, 94, 0xFFF8),
    10: (0x3F, 188, 0xFFFC),
    11: (0x5F, 375, 0xFFFE),
    12: (0x7F, 750, 0xFFFF),
}


def crc8(buf, start, end):
    """Dallas/Maxim CRC-8 over buf[start:end]: polynomial x^8 + x^5 + x^4 + 1,
    LSB first, init 0 ("CRC generation"). Over a block that ends
    with its own CRC byte the result is 0."""
    crc = 0
    for i in range(start, end):
        byte = buf[i]
        for _ in range(8):
            mix = (crc ^ byte) & 1
            crc >>= 1
            if mix:
                crc ^= 0x8C  # the polynomial, bit-reversed
            byte >>= 1
    return crc


def _hex(buf):
    return "".join("%02x" % b for b in buf)


class DS18B20:
    CHANNELS = ("temperature",)
    UNITS = ("°C",)
    DEVICE_CLASSES = ("temperature",)
    DECIMALS = (2,)

    # What a board file's params may set (node.config checks the names at boot).
    PARAMS = ("rom", "resolution")

    def __init__(self, onewire, rom=None, resolution=12):
        setting = _RESOLUTIONS.get(resolution)
        if setting is None:
            raise ValueError("ds18b20: resolution %r, expected 9, 10, 11 or 12 (bits)" % (resolution,))
        self._config, self._wait_ms, self._mask = setting
        self._ow = onewire
        self._rom = None
        self._scan = rom is None  # find the ROM by a scan, again after a failure
        if rom is not None:
            self._rom = self._check_rom(unhexlify(rom) if isinstance(rom, str) else bytes(rom))
            self._name = "ds18b20 %s" % _hex(self._rom)
        else:
            self._name = "ds18b20"
        self._scratchpad = bytearray(9)  # T lsb, T msb, TH, TL, config, FFh, res, 10h, CRC (memory map)
        self._ready = False

    def _check_rom(self, rom):
        if len(rom) != 8 or crc8(rom, 0, 8) != 0:
            raise ValueError("ds18b20: ROM code %s is not 8 bytes with a valid CRC" % _hex(rom))
        if rom[0] != _FAMILY_DS18B20:
            raise ValueError("ds18b20: ROM code %s has family 0x%02x, not 0x28" % (_hex(rom), rom[0]))
        return rom

    # ---- bus steps ----

    def _select(self, action):
        """Reset, check the presence pulse, address our device."""
        try:
            present = self._ow.reset()
            if present:
                self._ow.select_rom(self._rom)  # resets again, then MATCH ROM + the 8 bytes
        except OSError as e:
            raise SensorError("%s: %s: 1-Wire error %r" % (self._name, action, e))
        if not present:
            raise SensorError("%s: %s: no presence pulse (nothing on the bus, or no pull-up)" % (self._name, action))

    def _setup(self):
        if self._rom is None:
            try:
                roms = [bytes(r) for r in self._ow.scan() if r[0] == _FAMILY_DS18B20]
            except OSError as e:
                raise SensorError("%s: scanning the bus: 1-Wire error %r" % (self._name, e))
            if len(roms) != 1:
                raise SensorError(
                    "%s: rom=None needs exactly one DS18B20 on the bus, found %d%s"
                    % (self._name, len(roms), (": " + " ".join(_hex(r) for r in roms)) if roms else "")
                )
            self._rom = self._check_rom(roms[0])
            self._name = "ds18b20 %s" % _hex(self._rom)
        # Set the resolution: WRITE SCRATCHPAD takes TH, TL, config (all three,
        # "WRITE SCRATCHPAD [4Eh]"). TH/TL are alarm bytes we do not use: keep 0x4B/0x46, their defaults.
        self._select("setting the resolution")
        try:
            self._ow.writebyte(_WRITE_SCRATCHPAD)
            self._ow.writebyte(0x4B)
            self._ow.writebyte(0x46)
            self._ow.writebyte(self._config)
        except OSError as e:
            raise SensorError("%s: setting the resolution: 1-Wire error %r" % (self._name, e))
        self._ready = True

    # ---- the driver interface ----

    def start(self):
        try:
            if not self._ready:
                self._setup()
            self._select("starting a conversion")
            self._ow.writebyte(_CONVERT_T)
        except OSError as e:  # SensorError included: set up again next time (probe replaced?)
            self._ready = False
            if self._scan:
                self._rom = None
                self._name = "ds18b20"
            if isinstance(e, SensorError):
                raise
            raise SensorError("%s: starting a conversion: 1-Wire error %r" % (self._name, e))
        return self._wait_ms

    def read(self, values):
        if not self._ready:
            raise SensorError("%s: read() without a successful start()" % self._name)
        self._select("reading the scratchpad")
        pad = self._scratchpad
        try:
            self._ow.writebyte(_READ_SCRATCHPAD)
            self._ow.readinto(pad)
        except OSError as e:
            raise SensorError("%s: reading the scratchpad: 1-Wire error %r" % (self._name, e))
        ones = 0xFF
        for i in range(9):
            ones &= pad[i]
        if ones == 0xFF:
            raise SensorError("%s: scratchpad reads all 1s: the device did not answer" % self._name)
        if crc8(pad, 0, 9) != 0:
            raise SensorError(
                "%s: scratchpad CRC 0x%02x, computed 0x%02x (scratchpad %s)"
                % (self._name, pad[8], crc8(pad, 0, 8), _hex(pad))
            )
        if pad[4] & _CONFIG_RESERVED_MASK != _CONFIG_RESERVED:
            # A line held low reads all zeros, and zeros have a valid CRC.
            raise SensorError(
                "%s: configuration byte 0x%02x is not a DS18B20's (scratchpad %s)" % (self._name, pad[4], _hex(pad))
            )
        if pad[4] != self._config:
            # Power cycled since setup: back to the resolution stored in its EEPROM.
            self._ready = False
            raise SensorError(
                "%s: resolution changed (config 0x%02x), set again at the next start()" % (self._name, pad[4])
            )
        raw = ((pad[1] << 8) | pad[0]) & self._mask
        if raw == _POWER_ON_RAW:
            raise SensorError(
                "%s: reads 85.00 degC, the power-on value: the conversion did not run (power?)" % self._name
            )
        if raw & 0x8000:
            raw -= 0x10000
        # Temperature/data relationship table: two's complement in 1/16 degC. In 0.01 degC: raw * 100 / 16
        # = raw * 25 / 4, rounded half up.
        temperature = (raw * 25 + 2) >> 2
        if temperature < _T_MIN or temperature > _T_MAX:
            raise SensorError("%s: temperature %s degC outside -55..125" % (self._name, fixed(temperature, 2)))
        values[0] = temperature
