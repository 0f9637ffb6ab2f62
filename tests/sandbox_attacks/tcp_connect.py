# expect: denied
# requires: seccomp|netns|landlock

"""Open TCP connections: to the port the test listens on (port.txt), and to the internet."""
import socket

from jan.sdk.assistant import assistant, events


@events.on(f"assistant:{assistant.id}")
def attack(event):
    port = int((assistant.folder / "port.txt").read_text())
    errors = []
    for host, p in (("127.0.0.1", port), ("localhost", port), ("1.1.1.1", 443),
                    ("::1", port)):
        try:
            s = socket.create_connection((host, p), timeout=1)
            s.sendall(b"GET /health HTTP/1.0\r\n\r\n")
            return f"LEAK connected to {host}:{p}"
        except OSError as exc:
            errors.append(repr(exc))
    return "DENIED " + "; ".join(errors)
