# expect: denied
# requires: seccomp

"""Fork without end; also try subprocess and threads-as-processes."""
import os
import subprocess

from jan.sdk.assistant import assistant, events


@events.on(f"assistant:{assistant.id}")
def attack(event):
    children = 0
    try:
        for _ in range(64):
            if os.fork() == 0:
                os._exit(0)  # bounded: a leak is reported, not a machine taken down
            children += 1
    except OSError as exc:
        fork_error = exc
    try:
        subprocess.run(["/bin/true"], check=False)
        return "LEAK subprocess ran"
    except OSError:
        pass
    if children:
        return f"LEAK forked {children} children"
    return f"DENIED {fork_error!r}"
