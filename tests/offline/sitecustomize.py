"""Network guard for MedLab's tests: any connection beyond this machine fails loudly.

The test suite puts this folder on ``PYTHONPATH``, so Python imports this module at start-up
in the test process and in every notebook kernel it launches. Loopback and Unix sockets stay
allowed (Jupyter kernels talk over them); anything else raises :class:`NetworkBlockedError`
naming the address, so an accidental download is caught in the tests and not in a classroom.
"""

import ipaddress
import socket

_ALLOWED_HOSTS = {"localhost", "localhost.localdomain", "ip6-localhost", ""}


class NetworkBlockedError(ConnectionError):
    """A connection to another machine was attempted while the tests run offline."""


def _is_local(host) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    host = str(host).strip("[]").split("%")[0]
    if host.lower() in _ALLOWED_HOSTS:
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def _refuse(what: str):
    raise NetworkBlockedError(
        f"MedLab runs offline in its tests: a connection to {what} was blocked. Labs must not "
        "download anything in the smoke or default profile."
    )


def _guarded(method):
    def wrapper(self, address, *args, **kwargs):
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_local(address[0]):
            _refuse(f"{address[0]}:{address[1]}")
        return method(self, address, *args, **kwargs)

    wrapper.__name__ = method.__name__
    return wrapper


def _guarded_getaddrinfo(original):
    def getaddrinfo(host, *args, **kwargs):
        if not _is_local(host):
            _refuse(str(host))
        return original(host, *args, **kwargs)

    return getaddrinfo


def install() -> None:
    """Activate the guard in this process (idempotent)."""
    if getattr(socket, "_medlab_offline", False):
        return
    socket.socket.connect = _guarded(socket.socket.connect)
    socket.socket.connect_ex = _guarded(socket.socket.connect_ex)
    socket.getaddrinfo = _guarded_getaddrinfo(socket.getaddrinfo)
    socket._medlab_offline = True


install()
