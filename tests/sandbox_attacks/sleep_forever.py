# expect: failed time limit

"""Never answer."""
import time

from jan.sdk.assistant import assistant, events


@events.on(f"assistant:{assistant.id}")
def attack(event):
    time.sleep(10**6)
