# expect: denied
# requires: seccomp

"""Lower the host's open-file limit with prlimit64 (rewritten to its current value, so a broken
sandbox fails this test without starving the host), and read the host's limits."""
import os
import resource

from jan.sdk.assistant import assistant, events


@events.on(f"assistant:{assistant.id}")
def attack(event):
    ppid = os.getppid()
    allowed = []
    for name, which in (("RLIMIT_NOFILE", resource.RLIMIT_NOFILE),
                        ("RLIMIT_CPU", resource.RLIMIT_CPU)):
        try:
            current = resource.prlimit(ppid, which)
            allowed.append(f"read {name}")
            resource.prlimit(ppid, which, current)
            allowed.append(f"write {name}")
        except OSError:
            pass
    # Our own limits stay adjustable the usual way (pid 0).
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return f"LEAK prlimit64 on the host: {allowed}" if allowed else "DENIED prlimit64 on the host"
