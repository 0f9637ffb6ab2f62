from pydantic import BaseModel

from jan.sdk import Extension, hookimpl
from jan.sdk.http import json_response, read_body


class Question(BaseModel):
    question: str


class Ask(Extension):
    @hookimpl
    def register_routes(self, register):
        register("/v1/ask", self.ask, methods=["POST"])

    async def ask(self, request):
        question = (await read_body(request, Question)).question
        answer = await self.ctx.models.chat(question, max_tokens=64)  # the default model
        return json_response({"answer": answer})
