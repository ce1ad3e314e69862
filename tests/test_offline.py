"""The network guard that the tests (and every notebook kernel they start) run under."""

import socket
import subprocess
import sys
import urllib.request

import pytest


def test_remote_connections_are_blocked_with_a_clear_message():
    with pytest.raises(ConnectionError, match="MedLab runs offline in its tests: a connection to 192.0.2.1"):
        socket.create_connection(("192.0.2.1", 80), timeout=1)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as raw:
        with pytest.raises(ConnectionError, match="192.0.2.1:443 was blocked"):
            raw.connect(("192.0.2.1", 443))
    with pytest.raises(OSError, match="connection to example.org was blocked"):
        urllib.request.urlopen("https://example.org/weights.pth", timeout=1)


def test_loopback_stays_allowed():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    try:
        client = socket.create_connection(server.getsockname(), timeout=2)
        client.close()
        socket.getaddrinfo("localhost", 80)
    finally:
        server.close()


def test_child_processes_inherit_the_guard():
    code = "import socket; socket.create_connection(('192.0.2.1', 80), timeout=1)"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode != 0 and "NetworkBlockedError" in run.stderr
