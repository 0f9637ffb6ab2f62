"""OpenAI's Agents SDK with its default (Responses) model, pointed at our server, runs an agent
with a function tool to completion: with a scripted engine (always), and with the real model.
"""

from __future__ import annotations

import pytest
from conftest import asgi_client
from responses_fixtures import (
    MODEL,
    SCRIPTED,
    ScriptedEngine,
    call_script,
    fake_model,
    openai_for,
    text_script,
    use_engine,
    write_model,
)

agents = pytest.importorskip("agents")


def weather_agent(model: str) -> tuple[object, list[str]]:
    calls: list[str] = []

    @agents.function_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        calls.append(city)
        return f"It is sunny in {city}."

    agent = agents.Agent(name="Weather", instructions="Use the tool to answer.",
                         model=model, tools=[get_weather],
                         model_settings=agents.ModelSettings(tool_choice="required",
                                                             max_tokens=64))
    return agent, calls


async def run(http: object, agent: object) -> object:
    agents.set_tracing_disabled(True)
    agents.set_default_openai_client(openai_for(http), use_for_tracing=False)
    agents.set_default_openai_api("responses")
    return await agents.Runner.run(agent, "What is the weather in Paris?", max_turns=3)


async def test_agent_with_a_function_tool_runs_to_completion(make_host, data_folder):
    fake_model(data_folder)
    engine = ScriptedEngine(call_script("get_weather", '{"city": "Paris"}'),
                            text_script("Sunny in Paris."))
    async with make_host(settings=SCRIPTED) as jan, asgi_client(jan) as http:
        use_engine(jan, engine)
        agent, calls = weather_agent("fake")
        result = await run(http, agent)
    assert calls == ["Paris"] and result.final_output == "Sunny in Paris."
    assert engine.requests[1].messages[-1].role == "tool"
    assert engine.requests[1].messages[-1].content == "It is sunny in Paris."


@pytest.mark.slow
async def test_agent_with_the_real_model(make_host, data_folder, smollm_path):
    write_model(data_folder, smollm_path)
    async with make_host() as jan, asgi_client(jan) as http:
        agent, calls = weather_agent(MODEL)
        result = await run(http, agent)
    assert calls and isinstance(result.final_output, str)


@pytest.mark.slow
async def test_forced_tool_choice_with_the_real_model(make_host, data_folder, smollm_path):
    write_model(data_folder, smollm_path)
    tool = {"type": "function", "name": "get_weather", "description": "Weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                           "required": ["city"]}}
    async with make_host() as jan, asgi_client(jan) as http:
        client = openai_for(http)
        r = await client.responses.create(model=MODEL, input="Weather in Paris?", tools=[tool],
                                          max_output_tokens=64,
                                          tool_choice={"type": "function",
                                                       "name": "get_weather"})
        call = r.output[0]
        assert call.type == "function_call" and call.name == "get_weather"
        r2 = await client.responses.create(
            model=MODEL, previous_response_id=r.id, tools=[tool], max_output_tokens=24,
            input=[{"type": "function_call_output", "call_id": call.call_id,
                    "output": "sunny"}])
        assert r2.status in ("completed", "incomplete") and r2.output_text
