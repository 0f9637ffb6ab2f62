# expect: failed time limit

"""Burn CPU forever."""
from jan.sdk.assistant import assistant, events


@events.on(f"assistant:{assistant.id}")
def attack(event):
    n = 0
    while True:
        n += 1
