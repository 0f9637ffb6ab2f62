# expect: denied
# requires: landlock

"""Read the host's environment through /proc/<ppid>/environ (and /proc/1)."""
import os

from jan.sdk.assistant import assistant, events


@events.on(f"assistant:{assistant.id}")
def attack(event):
    leaks, errors = [], []
    for pid in (os.getppid(), 1):
        for name in ("environ", "cmdline", "maps"):
            try:
                with open(f"/proc/{pid}/{name}", "rb") as f:
                    data = f.read()
                if data:
                    leaks.append(f"{pid}/{name}")
            except OSError as exc:
                errors.append(f"{pid}/{name}: {exc.strerror}")
    return f"LEAK {leaks}" if leaks else "DENIED " + "; ".join(errors)
