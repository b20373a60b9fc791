"""OpenAI and Anthropic SDK clients reaching Gemini through the gateway's translation (issue 15):
the real data plane serves a `provider: Gemini` backend (the Gemini-flavoured mock, key in
`x-goog-api-key`) and a `provider: VertexAI` backend (the Vertex-flavoured mock, which is also
the GCE metadata server the gateway's Workload Identity token comes from). The SDKs parse the
gateway's answers, streams and errors into their own types; the mocks check each request the
gateway sends with their own reading of Google's wire format."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import anthropic
import openai
import pytest
import yaml

from conftest import CLIENT_KEY, CLIENT_KEY_ENV, GatewayProcess, Mock, resource

GEMINI_KEY_ENV = "SWITCHBOARD_E2E_GEMINI_KEY"
GEMINI_KEY = "AIzaSyPythonE2e"
THOUGHT_SIGNATURE = "bW9jay10aG91Z2h0LXNpZ25hdHVyZQ=="
TIMEOUTS = {"connect": "2s", "firstByte": "5s", "streamIdle": "10s", "request": "30s"}
WEATHER = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
}


@pytest.fixture(scope="module")
def google_mocks():
    gemini, vertex = Mock("gemini"), Mock("vertex")
    yield gemini, vertex
    gemini.stop()
    vertex.stop()


@pytest.fixture(scope="module")
def google_gateway(google_mocks):
    gemini, vertex = google_mocks
    docs = [
        resource("AIBackend", "gemini", {
            "provider": "Gemini",
            "endpoint": gemini.url,
            "credentials": {"env": GEMINI_KEY_ENV},
            "models": [{"name": "gemini-api", "providerModel": "gemini-2.5-pro"}],
            "timeouts": TIMEOUTS,
        }),
        resource("AIBackend", "vertex", {
            "provider": "VertexAI",
            "endpoint": vertex.url,
            "vertex": {"project": "my-project", "region": "global"},
            "credentials": {"gcp": {"workloadIdentity": {}}},
            "models": [{"name": "gemini-vertex", "providerModel": "gemini-2.5-flash"}],
            "timeouts": TIMEOUTS,
        }),
        resource("AIRoute", "google", {
            "pathPrefix": "/",
            "auth": {"apiKeys": [{"name": "e2e", "env": CLIENT_KEY_ENV}]},
            "rules": [
                {"models": ["gemini-api"], "backends": [{"name": "gemini", "priority": 0, "weight": 1}]},
                {"models": ["gemini-vertex"], "backends": [{"name": "vertex", "priority": 0, "weight": 1}]},
            ],
            "retry": {"backoff": "50ms", "retryAfterCap": "1s"},
        }),
    ]
    config_dir = Path(tempfile.mkdtemp(prefix="switchboard-py-google-"))
    (config_dir / "config.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False))
    host = vertex.url.removeprefix("http://")
    gw = GatewayProcess(
        config_dir,
        {CLIENT_KEY_ENV: CLIENT_KEY, GEMINI_KEY_ENV: GEMINI_KEY, "GCE_METADATA_HOST": host},
    )
    yield gw
    gw.stop()


@pytest.fixture
def gemini(google_mocks):
    google_mocks[0].reset()
    return google_mocks[0]


@pytest.fixture
def vertex(google_mocks):
    google_mocks[1].reset()
    return google_mocks[1]


@pytest.fixture
def oai(google_gateway):
    return openai.OpenAI(base_url=f"{google_gateway.base_url}/v1", api_key=CLIENT_KEY, max_retries=0, timeout=20)


@pytest.fixture
def claude(google_gateway):
    return anthropic.Anthropic(base_url=google_gateway.base_url, api_key=CLIENT_KEY, max_retries=0, timeout=20)


def chat_tools():
    return [{"type": "function", "function": {"name": "get_weather", "description": "Weather", "parameters": WEATHER}}]


def test_openai_chat_streams_a_tool_loop_from_gemini(gemini, oai):
    gemini.set_default({"kind": "ToolCall", "name": "get_weather", "arguments": {"city": "Paris"}})
    question = [{"role": "user", "content": "Weather in Paris?"}]
    stream = oai.chat.completions.create(model="gemini-api", messages=question, tools=chat_tools(), stream=True)
    calls: dict[int, dict] = {}
    finish = None
    for chunk in stream:
        for choice in chunk.choices:
            for tc in choice.delta.tool_calls or []:
                call = calls.setdefault(tc.index, {"id": "", "name": "", "arguments": ""})
                call["id"] = tc.id or call["id"]
                call["name"] = (tc.function.name if tc.function else None) or call["name"]
                call["arguments"] += (tc.function.arguments if tc.function else None) or ""
            finish = choice.finish_reason or finish
    assert finish == "tool_calls"
    [call] = calls.values()
    assert call["name"] == "get_weather" and json.loads(call["arguments"]) == {"city": "Paris"}
    assert "__thought__" in call["id"], "the thought signature rides in the id"
    [req] = gemini.generation_requests()
    assert req["path"] == "/v1beta/models/gemini-2.5-pro:streamGenerateContent"
    assert req["query"] == "alt=sse"
    assert req["headers"]["x-goog-api-key"] == GEMINI_KEY

    gemini.set_default({"kind": "OkWithUsage", "text": "Sunny.", "input": 40, "output": 2, "cached": 30})
    out = oai.chat.completions.create(
        model="gemini-api",
        tools=chat_tools(),
        messages=question + [
            {"role": "assistant", "content": None, "tool_calls": [{"id": call["id"], "type": "function",
                "function": {"name": "get_weather", "arguments": call["arguments"]}}]},
            {"role": "tool", "tool_call_id": call["id"], "content": "sunny, 24C"},
        ],
    )
    assert out.choices[0].message.content == "Sunny."
    assert out.choices[0].finish_reason == "stop"
    assert out.usage.prompt_tokens == 70
    assert out.usage.prompt_tokens_details.cached_tokens == 30
    sent = gemini.generation_requests()[-1]["body"]
    model_turn = next(c for c in sent["contents"] if c["role"] == "model")
    assert model_turn["parts"][0]["thoughtSignature"] == THOUGHT_SIGNATURE
    assert sent["contents"][-1]["parts"][0]["functionResponse"]["name"] == "get_weather"


def test_openai_responses_from_gemini_on_vertex(vertex, oai):
    vertex.set_default({"kind": "Ok", "text": "Hello from Vertex"})
    out = oai.responses.create(model="gemini-vertex", input="hi", instructions="Be brief.")
    assert out.output_text == "Hello from Vertex"
    assert out.status == "completed"
    with oai.responses.stream(model="gemini-vertex", input="hi") as stream:
        text = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
        final = stream.get_final_response()
    assert text == "Hello from Vertex" and final.output_text == "Hello from Vertex"
    posts = vertex.generation_requests()
    assert posts[-1]["path"] == (
        "/v1/projects/my-project/locations/global/publishers/google/models/gemini-2.5-flash:streamGenerateContent"
    )
    assert posts[-1]["headers"]["authorization"] == "Bearer ya29.mock-metadata-token"


def test_anthropic_messages_stream_and_tools_from_gemini(gemini, claude):
    gemini.set_default({"kind": "Ok", "text": "Hello from Gemini"})
    with claude.messages.stream(model="gemini-api", max_tokens=64, system="Be brief.",
                                messages=[{"role": "user", "content": "hi"}]) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Hello from Gemini"
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 0
    assert gemini.generation_requests()[-1]["body"]["systemInstruction"]["parts"][0]["text"] == "Be brief."

    gemini.set_default({"kind": "ToolCall", "name": "get_weather", "arguments": {"city": "Paris"}})
    msg = claude.messages.create(
        model="gemini-api", max_tokens=64,
        tools=[{"name": "get_weather", "description": "Weather", "input_schema": WEATHER}],
        messages=[{"role": "user", "content": "Weather in Paris?"}],
    )
    assert msg.stop_reason == "tool_use"
    [use] = [b for b in msg.content if b.type == "tool_use"]
    assert use.name == "get_weather" and use.input == {"city": "Paris"}

    count = claude.messages.count_tokens(model="gemini-api", messages=[{"role": "user", "content": "hello there"}])
    assert count.input_tokens > 0
    assert gemini.generation_requests()[-1]["path"] == "/v1beta/models/gemini-2.5-pro:countTokens"


def test_google_errors_reach_each_sdk_as_its_own_exception(gemini, oai, claude):
    gemini.set_default({"kind": "Status", "status": 400})
    with pytest.raises(anthropic.BadRequestError) as e:
        claude.messages.create(model="gemini-api", max_tokens=16, messages=[{"role": "user", "content": "hi"}])
    assert e.value.body["error"]["type"] == "invalid_request_error"
    with pytest.raises(openai.BadRequestError):
        oai.chat.completions.create(model="gemini-api", messages=[{"role": "user", "content": "hi"}])
    gemini.set_default({"kind": "Status", "status": 429})
    with pytest.raises(openai.RateLimitError):
        oai.chat.completions.create(model="gemini-api", messages=[{"role": "user", "content": "hi"}])
