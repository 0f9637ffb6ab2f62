"""Write small real extensions into folders, for the host's tests."""

from __future__ import annotations

import textwrap
from pathlib import Path

VERSIONED_ROUTE = """
    from jan.sdk import Extension, hookimpl
    from jan.sdk.http import json_response

    class Ext(Extension):
        @hookimpl
        def register_routes(self, register):
            register("/x/live", self.live, methods=["GET"])

        async def live(self, request):
            return json_response({{"version": {version}}})
"""
"""An extension serving ``{"version": N}`` at ``/x/live``: ``.format(version=N)``."""


def write_extension(root: Path, ext_id: str, *, body: str = "", manifest_extra: str = "",
                    activation: str = '["onStartup"]', version: str = "0.1.0",
                    folder_name: str | None = None) -> Path:
    folder = root / (folder_name or ext_id)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "extension.toml").write_text(textwrap.dedent(f"""\
        id = "{ext_id}"
        version = "{version}"
        main = "main:Ext"
        activation_events = {activation}
        """) + textwrap.dedent(manifest_extra))
    default_body = f"""
        from jan.sdk import Extension, hookimpl
        from jan.sdk.http import json_response

        class Ext(Extension):
            def activate(self, ctx):
                self.ctx = ctx
                return {{"id": "{ext_id}"}}

            @hookimpl
            def register_routes(self, register):
                register("/x/{ext_id}", self.hello, methods=["GET"])

            async def hello(self, request):
                return json_response({{"from": "{ext_id}"}})
    """
    (folder / "main.py").write_text(textwrap.dedent(body or default_body))
    return folder
