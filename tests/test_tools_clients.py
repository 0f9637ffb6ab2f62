"""Tool calling with the client libraries people use, installed from PyPI (the test extra):
LangChain's ChatOpenAI, instructor, pydantic-ai and OpenAI's Agents SDK, each over the real
SmolLM2 model through the ASGI app (an httpx client with the app as transport)."""

from __future__ import annotations

import openai
import pytest
from conftest import asgi_client
from pydantic import BaseModel
from test_chat_api import MODEL, write_model

pytestmark = pytest.mark.slow


class City(BaseModel):
    """A city and the country it is in."""

    name: str
    country: str


@pytest.fixture
async def http(make_host, data_folder, smollm_path):
    write_model(data_folder, smollm_path, parameters={"temperature": 0, "max_tokens": 60})
    async with make_host() as jan, asgi_client(jan) as client:
        yield client


def openai_client(http) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url="http://test/v1", api_key="local", http_client=http,
                              max_retries=0)


async def test_langchain_bind_tools_and_structured_output(http):
    lc = pytest.importorskip("langchain_openai")
    from langchain_core.tools import tool

    @tool
    def get_weather(city: str) -> str:
        """Get the current weather in a city."""
        return "sunny"

    llm = lc.ChatOpenAI(model=MODEL, base_url="http://test/v1", api_key="local",
                        http_async_client=http, max_retries=0, temperature=0)
    msg = await llm.bind_tools([get_weather], tool_choice="get_weather").ainvoke(
        "What is the weather in Paris?")
    assert msg.tool_calls and msg.tool_calls[0]["name"] == "get_weather"
    assert isinstance(msg.tool_calls[0]["args"]["city"], str)
    assert msg.tool_calls[0]["id"].startswith("call_")
    chunks = [c async for c in llm.bind_tools([get_weather], tool_choice="required").astream(
        "What is the weather in Rome?")]
    whole = chunks[0]
    for c in chunks[1:]:
        whole += c  # LangChain's own accumulation of streamed tool-call chunks
    assert whole.tool_calls and whole.tool_calls[0]["name"] == "get_weather"
    city = await llm.with_structured_output(City, method="function_calling").ainvoke(
        "Paris is the capital of France. Extract the city.")
    assert isinstance(city, City) and city.name


async def test_instructor_default_tools_mode(http):
    instructor = pytest.importorskip("instructor")
    client = instructor.from_openai(openai_client(http))
    city = await client.chat.completions.create(
        model=MODEL, response_model=City, max_retries=1, max_tokens=60,
        messages=[{"role": "user", "content": "Paris is in France. Extract the city."}])
    assert isinstance(city, City) and city.name and city.country


async def test_pydantic_ai_structured_output_and_a_tool(http):
    pytest.importorskip("pydantic_ai")
    from pydantic_ai import Agent
    from pydantic_ai.exceptions import UsageLimitExceeded
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider
    from pydantic_ai.usage import UsageLimits

    model = OpenAIChatModel(MODEL, provider=OpenAIProvider(openai_client=openai_client(http)))
    agent = Agent(model, output_type=City, retries=2)
    result = await agent.run("Paris is in France. Which city is it?")
    assert isinstance(result.output, City) and result.output.name

    # With a tool too: the model may call it or answer through the output tool; either way
    # every call it makes must be valid for the run to end with a valid City.
    tool_agent = Agent(model, output_type=City, retries=2)
    calls: list[str] = []

    @tool_agent.tool_plain
    def country_of(city: str) -> str:
        """Look up the country a city is in."""
        calls.append(city)
        return "France"

    try:
        result = await tool_agent.run("Which country is Paris in? Answer with the city.",
                                      usage_limits=UsageLimits(request_limit=6))
    except UsageLimitExceeded:
        # SmolLM2 (135M) may keep calling the tool instead of answering through the output
        # tool; pydantic-ai validated every call it made, which is what this checks.
        assert calls
    else:
        assert isinstance(result.output, City) and result.output.name
    assert all(isinstance(c, str) and c for c in calls)


async def test_openai_agents_function_tool(http):
    pytest.importorskip("agents")
    from agents import (
        Agent,
        ModelSettings,
        OpenAIChatCompletionsModel,
        Runner,
        function_tool,
        set_tracing_disabled,
    )

    set_tracing_disabled(True)
    calls: list[str] = []

    @function_tool
    def get_weather(city: str) -> str:
        """Get the current weather in a city."""
        calls.append(city)
        return "sunny, 22 C"

    agent = Agent(name="weather", instructions="Answer with the weather tool.",
                  tools=[get_weather],
                  model=OpenAIChatCompletionsModel(model=MODEL, openai_client=openai_client(http)),
                  model_settings=ModelSettings(tool_choice="required", max_tokens=60))
    result = await Runner.run(agent, "What is the weather in Paris?", max_turns=4)
    assert calls and isinstance(calls[0], str)  # the tool ran with schema-valid arguments
    assert isinstance(result.final_output, str)
