# expect: failed SIGSEGV

"""Crash the interpreter."""
import ctypes

from jan.sdk.assistant import assistant, events


@events.on(f"assistant:{assistant.id}")
def attack(event):
    ctypes.string_at(0)
