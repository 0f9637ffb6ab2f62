"""``ctx.models.chat``: text, a stream of pieces, and clear errors, with the real model."""

from __future__ import annotations

import pytest
from cli_fixtures import write_model

from jan.sdk.errors import InvalidRequest, NotFound


@pytest.mark.slow
async def test_chat_text_stream_and_errors(make_host, data_folder, smollm_path):
    write_model(data_folder, "smol-a", smollm_path)
    async with make_host() as jan:
        await jan.host.activate("chat")
        models = jan.host.records["chat"].context.models
        text = await models.chat("Say hello", model="smol-a", max_tokens=8)
        assert isinstance(text, str) and text.strip()
        pieces = [p async for p in await models.chat(
            [{"role": "user", "content": "Say hello"}], model="smol-a", max_tokens=8,
            stream=True)]
        assert len(pieces) > 1 and "".join(pieces) == text  # temperature 0: the same reply
        with pytest.raises(NotFound):
            await models.chat("hi", model="no-such-model")
        with pytest.raises(InvalidRequest, match="bogus"):
            await models.chat("hi", model="smol-a", bogus=1)
