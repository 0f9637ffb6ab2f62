# expect: denied

"""Allocate 4 GB (the address-space limit must stop it)."""
from jan.sdk.assistant import assistant, events


@events.on(f"assistant:{assistant.id}")
def attack(event):
    try:
        block = bytearray(4 * 1024**3)
        block[-1] = 1
    except MemoryError as exc:
        return f"DENIED {exc!r}"
    return "LEAK allocated 4 GB"
