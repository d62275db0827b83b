"""TCP ports on this machine: is one free, find one, wait until a server listens on one.

One definition for the managed PostgreSQL, `cockpit serve`, the tests and the benchmarks.
"""
from __future__ import annotations

import socket
import time

from cockpit.errors import CockpitError

LOCALHOST = "127.0.0.1"


def bind_error(port: int, host: str = LOCALHOST) -> OSError | None:
    """Why a server could not listen on host:port now; None if it could.

    Tried as servers bind (SO_REUSEADDR): a port whose old connections linger in TIME_WAIT,
    after a restart, is free to them, so a server keeps its port and clients find it again.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            return exc
    return None


def is_free(port: int, host: str = LOCALHOST) -> bool:
    return bind_error(port, host) is None


def free_port(first: int | None = None, host: str = LOCALHOST, tries: int = 200, what: str = "a server") -> int:
    """The first free port from `first` on; without `first`, any free port the system picks."""
    if first is None:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            return s.getsockname()[1]
    for port in range(first, first + tries):
        if is_free(port, host):
            return port
    raise CockpitError(f"no free TCP port in {first}..{first + tries - 1} for {what}")


def wait_for_port(port: int, host: str = LOCALHOST, seconds: float = 30.0) -> bool:
    """Until something accepts connections on host:port; False if nothing did in time."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            socket.create_connection((host, port), timeout=1).close()
            return True
        except OSError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.2)
