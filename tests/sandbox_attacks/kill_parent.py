# expect: denied
# requires: seccomp|landlock

"""Signal the host (signal 0 checks permission without harming the test if it leaks)."""
import os

from jan.sdk.assistant import assistant, events


@events.on(f"assistant:{assistant.id}")
def attack(event):
    ppid = os.getppid()
    allowed = []
    for name, fn in (("kill", lambda: os.kill(ppid, 0)),
                     ("killpg", lambda: os.killpg(os.getpgid(ppid), 0)),
                     ("kill -1", lambda: os.kill(-1, 0))):
        try:
            fn()
            allowed.append(name)
        except OSError:
            pass
    return f"LEAK could signal the host via {allowed}" if allowed else "DENIED no signals out"
