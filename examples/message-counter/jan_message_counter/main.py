"""Count messages per thread as they are created; serve the counts.

It shows the three ways to plug in: an event handler (``message.created``), a route (hook), and
settings (``greeting``, overridable in settings.json ``extensions.message-counter``).
"""

from collections import Counter

from jan.sdk import Extension, hookimpl
from jan.sdk.http import json_response


class MessageCounter(Extension):
    def activate(self, ctx):
        self.ctx = ctx
        self.counts: Counter[str] = Counter()
        ctx.events.on("message.created", self.on_message)

    def on_message(self, topic, message):
        self.counts[(message or {}).get("thread_id", "?")] += 1

    @hookimpl
    def register_routes(self, register):
        register("/v1/message-counter", self.show, methods=["GET"])

    async def show(self, request):
        return json_response({
            "greeting": self.ctx.settings["greeting"],
            "total": sum(self.counts.values()),
            "threads": dict(self.counts),
        })
