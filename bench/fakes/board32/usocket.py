# umqtt.simple imports `usocket`: the same fake as socket.py.
from socket import *  # noqa: F403
