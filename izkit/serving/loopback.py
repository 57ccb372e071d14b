"""This machine's loopback: the names an endpoint on this machine goes by, the address izkit's servers bind, a free port.

Read by the server (izkit.serving.serve), the OpenAI-compatible black box (which leaves a loopback endpoint's port out of its
answer cache's key: a restarted local server is the same black box), resuming (izkit.resume) and the command line. It
imports no server, so a module that only needs to recognise a local endpoint does not load one.
"""

from __future__ import annotations

import socket

HOST = "127.0.0.1"  # where izkit's servers bind unless told otherwise: unreachable from other machines
LOOPBACK = (HOST, "localhost", "::1")  # names of this machine: an endpoint there is a server here


def free_port(host: str = HOST) -> int:
    """A TCP port that was free on ``host`` a moment ago."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])
