"""Event names published on the host's bus (Jan's names).

Subscribe with ``ctx.events.on(name, handler)``; ``*`` matches any run of characters, so
``"message.*"`` receives every message event and ``"assistant:*"`` every assistant topic.
"""

THREAD_CREATED = "thread.created"
THREAD_UPDATED = "thread.updated"
THREAD_DELETED = "thread.deleted"
MESSAGE_CREATED = "message.created"
MESSAGE_UPDATED = "message.updated"
MESSAGE_DELETED = "message.deleted"
ASSISTANT_CREATED = "assistant.created"
ASSISTANT_UPDATED = "assistant.updated"
ASSISTANT_DELETED = "assistant.deleted"
MODEL_LOADED = "model.loaded"
MODEL_UNLOADED = "model.unloaded"
MODEL_ADDED = "model.added"
MODEL_REMOVED = "model.removed"
RUN_CREATED = "run.created"
RUN_UPDATED = "run.updated"
DATA_CHANGED = "data.changed"
"""A watched data-folder area changed.

Payload ``{"area": "models"|"assistants"|"extensions", "paths": [...]}``.
"""
EXTENSION_ACTIVATED = "extension.activated"
EXTENSION_DEACTIVATED = "extension.deactivated"


def assistant_topic(assistant_id: str) -> str:
    """The pub/sub topic an assistant owns: ``assistant:<id>``."""
    return f"assistant:{assistant_id}"
