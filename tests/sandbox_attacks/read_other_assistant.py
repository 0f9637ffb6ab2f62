# expect: denied
# requires: landlock

"""Read a sibling assistant's code and data."""
from jan.sdk.assistant import assistant, events


@events.on(f"assistant:{assistant.id}")
def attack(event):
    sibling = assistant.folder.parent / "canary"
    try:
        return "LEAK " + (sibling / "index.py").read_text()[:80]
    except OSError as exc:
        return f"DENIED {exc!r}"
