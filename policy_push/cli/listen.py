"""The HTTP port, bound before any heavy work: a busy port is one line at once, not after the index."""

from __future__ import annotations

import errno
import socket

from .failures import CommandFailed, Exit

__all__ = ["bind_listener", "check_port_free"]


def bind_listener(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: any free port), or :class:`CommandFailed`."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror:
        raise CommandFailed(Exit.CONFIG, f"cannot listen on {host!r}: no such address; fix --host or POLICY_PUSH_HOST") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    # as aiohttp does: a restart may bind while old connections linger in TIME_WAIT
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise CommandFailed(
                Exit.PORT_IN_USE,
                f"port {port} on {host} is already in use: stop the program using it, or choose another "
                "with --port (or POLICY_PUSH_PORT)",
            ) from None
        if exc.errno in (errno.EACCES, errno.EPERM):
            raise CommandFailed(Exit.PORT_IN_USE, f"not allowed to listen on port {port}: use a port above 1023") from None
        if exc.errno == errno.EADDRNOTAVAIL:
            raise CommandFailed(Exit.CONFIG, f"{host} is not an address of this machine; fix --host or POLICY_PUSH_HOST") from None
        raise
    sock.setblocking(False)
    return sock


def check_port_free(host: str, port: int) -> None:
    """Raise :class:`CommandFailed` if ``host:port`` cannot be listened on now."""
    bind_listener(host, port).close()
