# expect: denied
# requires: seccomp

"""Connect to pathname UNIX sockets on the host: the one the test listens on (unix.txt), a
session bus, the docker daemon. A network namespace does not cover these; seccomp must."""
import os
import socket

from jan.sdk.assistant import assistant, events


@events.on(f"assistant:{assistant.id}")
def attack(event):
    target = (assistant.folder / "unix.txt").read_text().strip()
    errors = []
    for path in (target, f"/run/user/{os.getuid()}/bus", "/var/run/docker.sock",
                 "/run/docker.sock"):
        for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
            try:
                s = socket.socket(socket.AF_UNIX, kind)
            except OSError as exc:
                errors.append(f"socket({path}): {exc!r}")
                continue
            try:
                s.connect(path)
                return f"LEAK connected to {path}"
            except OSError as exc:
                errors.append(f"connect({path}): {exc!r}")
            finally:
                s.close()
    return "DENIED " + "; ".join(errors[:2])
