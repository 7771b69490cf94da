"""Each driver's PARAMS, the names a board file's `params` may set (checked
by node.config at boot), are its constructor's keyword parameters: a
parameter added to a driver and not to PARAMS would be refused at boot."""

import inspect

import pytest

from sensors import DRIVERS, driver_class

# Constructor parameters that tests pass and a board file does not.
TEST_HOOKS = {"dht22": {"readinto", "clock"}, "mcu_temp": {"source"}}


@pytest.mark.parametrize("name", sorted(DRIVERS))
def test_params_are_the_constructors_keywords(name):
    cls = driver_class(name)
    parameters = list(inspect.signature(cls.__init__).parameters.values())[2:]  # self, then the bus or pin
    if name == "mcu_temp":
        parameters = list(inspect.signature(cls.__init__).parameters.values())[1:]  # it finds its own source
    keywords = {p.name for p in parameters} - TEST_HOOKS.get(name, set())
    assert set(cls.PARAMS) == keywords
