# expect: denied

"""Eavesdrop on every other assistant's answers: a wildcard over their topics, then one named
assistant its assistant.json does not grant."""
from jan.sdk.assistant import assistant, events


@events.on(f"assistant:{assistant.id}")
def attack(event):
    allowed = []
    for topic in ("assistant:*", "assistant:canary", "assistant:c*", "*"):
        try:
            events.on(topic, print)
            allowed.append(topic)
        except PermissionError:
            pass
    return f"LEAK could hear {allowed}" if allowed else "DENIED only its own topic"
