# expect: failed output

"""Print without end (stdout is drained and capped; RPC has its own pipes)."""
import sys

from jan.sdk.assistant import assistant, events


@events.on(f"assistant:{assistant.id}")
def attack(event):
    line = "x" * 8191 + "\n"
    while True:
        sys.stdout.write(line)
        sys.stderr.write(line)
