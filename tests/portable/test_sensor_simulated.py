# Simulated sensors: deterministic, smooth, bounded, allocation-free.
import support
from sensors import SensorError, make
from sensors.simulated import SimHumidity, SimIlluminance, SimPressure, SimTemperature

KINDS = (
    # class, realistic bounds in its own fixed-point units
    (SimTemperature, 1700, 2500),  # 17.00..25.00 degC
    (SimHumidity, 250, 650),  # 25.0..65.0 %RH
    (SimPressure, 9900, 10350),  # 990.0..1035.0 hPa
    (SimIlluminance, 0, 1000),  # lx
)


def series(sensor, n):
    values = [0]
    out = []
    for _ in range(n):
        assert sensor.start() == 0
        sensor.read(values)
        out.append(values[0])
    return out


def test_same_seed_same_readings():
    for cls, _, _ in KINDS:
        assert series(cls(None, seed=7), 500) == series(cls(None, seed=7), 500), cls.NAME


def test_other_seed_or_other_kind_other_readings():
    assert series(SimTemperature(None, seed=1), 200) != series(SimTemperature(None, seed=2), 200)
    # Same seed, different quantities: not the same walk, scaled.
    a = [v - 2100 for v in series(SimTemperature(None, seed=1, step=6), 200)]
    b = [v - 450 for v in series(SimHumidity(None, seed=1, step=6), 200)]
    assert a != b


def test_readings_stay_realistic_and_move():
    for cls, low, high in KINDS:
        out = series(cls(None, seed=3), 5000)
        assert low <= min(out) and max(out) <= high, (cls.NAME, min(out), max(out))
        assert max(out) - min(out) >= 5 * cls.STEP, (cls.NAME, "does not move")
        for spread_seed in (11, 12345):
            out = series(cls(None, seed=spread_seed), 2000)
            assert cls.CENTER - cls.SPREAD <= min(out) and max(out) <= cls.CENTER + cls.SPREAD


def test_readings_are_smooth():
    for cls, _, _ in KINDS:
        out = series(cls(None, seed=5), 3000)
        jumps = [abs(out[i + 1] - out[i]) for i in range(len(out) - 1)]
        assert max(jumps) <= cls.STEP, (cls.NAME, max(jumps))


def test_center_spread_step_can_be_set():
    out = series(SimTemperature(None, seed=9, center=-500, spread=100, step=20), 3000)
    assert -600 <= min(out) and max(out) <= -400
    assert out[0] in range(-520, -479)


def test_failing_raises_a_sensor_error():
    sensor = make("sim_pressure", None)
    sensor.failing = True
    try:
        sensor.read([0])
    except SensorError as e:
        assert str(e) == "sim_pressure: simulated failure"
    else:
        raise AssertionError("no error while failing")
    sensor.failing = False
    sensor.read([0])


def test_interface_tuples():
    for cls, _, _ in KINDS:
        assert len(cls.CHANNELS) == len(cls.UNITS) == len(cls.DEVICE_CLASSES) == len(cls.DECIMALS) == 1
    assert SimIlluminance.UNITS == ("lx",) and SimIlluminance.DEVICE_CLASSES == ("illuminance",)
    assert SimPressure.DEVICE_CLASSES == ("atmospheric_pressure",)


def test_read_allocates_nothing():
    for cls, _, _ in KINDS:
        sensor = cls(None, seed=4)
        values = [0]
        sensor.read(values)
        assert support.allocated_by(sensor.read, values) == 0, cls.NAME
        for _ in range(100):
            support.heap_locked(sensor.read, values)
