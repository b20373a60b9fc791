"""The Gemini-, Vertex- and Azure-flavoured mock upstreams against the official SDKs, with no
gateway in between: `google-genai` (Gemini API key and Vertex mode), the `anthropic` SDK's
`AnthropicVertex`, the `openai` SDK's `AzureOpenAI` (deployment URLs) and `OpenAI` pointed at
Azure's v1 API. Each SDK builds its own URLs and headers, which the mock checks, and parses the
mock's JSON, SSE and errors into its own types: this is what makes the mocks faithful stand-ins
for Google and Azure in the gateway's tests."""

from __future__ import annotations

import anthropic
import google.oauth2.credentials
import openai
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from conftest import Mock

PROJECT = "my-project"


def fixture_mock(flavor: str):
    @pytest.fixture(scope="module")
    def started():
        mock = Mock(flavor)
        yield mock
        mock.stop()

    return started


gemini_mock = fixture_mock("gemini")
vertex_mock = fixture_mock("vertex")
azure_mock = fixture_mock("azure")


@pytest.fixture
def gemini(gemini_mock):
    gemini_mock.reset()
    return gemini_mock


@pytest.fixture
def vertex(vertex_mock):
    vertex_mock.reset()
    return vertex_mock


@pytest.fixture
def azure(azure_mock):
    azure_mock.reset()
    return azure_mock


def gemini_client(mock: Mock) -> genai.Client:
    return genai.Client(api_key="AIzaSyMock", http_options=types.HttpOptions(base_url=mock.url))


def test_gemini_api_answers_streams_and_tool_calls(gemini):
    gemini.set_default({"kind": "OkWithUsage", "text": "Hello from Gemini", "input": 12, "output": 3, "cached": 4})
    client = gemini_client(gemini)
    out = client.models.generate_content(model="gemini-2.5-pro", contents="hi")
    assert out.text == "Hello from Gemini"
    assert out.candidates[0].finish_reason == types.FinishReason.STOP
    assert out.usage_metadata.prompt_token_count == 16
    assert out.usage_metadata.cached_content_token_count == 4
    [req] = gemini.generation_requests()
    assert req["path"].endswith("/models/gemini-2.5-pro:generateContent")
    assert req["headers"]["x-goog-api-key"] == "AIzaSyMock"

    gemini.set_default({"kind": "Ok", "text": "one two three"})
    chunks = list(client.models.generate_content_stream(model="gemini-2.5-flash", contents="hi"))
    assert "".join(c.text for c in chunks) == "one two three"
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert gemini.generation_requests()[-1]["query"] == "alt=sse"

    gemini.set_default({"kind": "ToolCall", "name": "get_weather", "arguments": {"city": "Paris"}})
    tool = types.Tool(function_declarations=[types.FunctionDeclaration(
        name="get_weather", description="Weather",
        parameters=types.Schema(type="OBJECT", properties={"city": types.Schema(type="STRING")}))])
    out = client.models.generate_content(
        model="gemini-2.5-pro", contents="weather in Paris?",
        config=types.GenerateContentConfig(tools=[tool], automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True)))
    [call] = out.function_calls
    assert (call.name, call.args) == ("get_weather", {"city": "Paris"})
    assert out.candidates[0].content.parts[0].thought_signature == b"mock-thought-signature"


def test_gemini_errors_are_sdk_errors(gemini):
    gemini.set_default({"kind": "Status", "status": 429})
    client = gemini_client(gemini)
    with pytest.raises(genai_errors.ClientError) as err:
        client.models.generate_content(model="gemini-2.5-pro", contents="hi")
    assert err.value.code == 429
    assert err.value.status == "RESOURCE_EXHAUSTED"
    assert "Resource has been exhausted" in err.value.message


def test_vertex_mode_uses_the_project_path_and_a_bearer_token(vertex):
    vertex.set_default({"kind": "Ok", "text": "Hello from Vertex"})
    client = genai.Client(
        vertexai=True, project=PROJECT, location="us-central1",
        credentials=google.oauth2.credentials.Credentials(token="ya29.mock"),
        http_options=types.HttpOptions(base_url=vertex.url),
    )
    out = client.models.generate_content(model="gemini-2.5-pro", contents="hi")
    assert out.text == "Hello from Vertex"
    chunks = list(client.models.generate_content_stream(model="gemini-2.5-pro", contents="hi"))
    assert "".join(c.text for c in chunks) == "Hello from Vertex"
    paths = [r["path"] for r in vertex.generation_requests()]
    assert all(p.endswith(f"/projects/{PROJECT}/locations/us-central1/publishers/google/models/gemini-2.5-pro:generateContent")
               or p.endswith(":streamGenerateContent") for p in paths), paths
    assert vertex.generation_requests()[0]["headers"]["authorization"] == "Bearer ya29.mock"


def test_anthropic_vertex_raw_predict_stream_and_count_tokens(vertex):
    client = anthropic.AnthropicVertex(region="us-east5", project_id=PROJECT, base_url=f"{vertex.url}/v1", access_token="ya29.mock")
    vertex.set_default({"kind": "Ok", "text": "Hello from Claude"})
    msg = client.messages.create(model="claude-sonnet-4@20250514", max_tokens=64, messages=[{"role": "user", "content": "hi"}])
    assert msg.content[0].text == "Hello from Claude"
    assert msg.id.startswith("msg_vrtx_")
    with client.messages.stream(model="claude-sonnet-4@20250514", max_tokens=64, messages=[{"role": "user", "content": "hi"}]) as s:
        text = "".join(s.text_stream)
    assert text == "Hello from Claude"
    count = client.messages.count_tokens(model="claude-sonnet-4@20250514", messages=[{"role": "user", "content": "hi"}])
    assert count.input_tokens > 0
    paths = [r["path"] for r in vertex.generation_requests()]
    base = f"/v1/projects/{PROJECT}/locations/us-east5/publishers/anthropic/models"
    assert paths == [f"{base}/claude-sonnet-4@20250514:rawPredict", f"{base}/claude-sonnet-4@20250514:streamRawPredict",
                     f"{base}/count-tokens:rawPredict"]


def test_azure_openai_deployments_and_v1(azure):
    azure.set_default({"kind": "Ok", "text": "Hello from Azure"})
    client = openai.AzureOpenAI(api_key="azure-key", api_version="2024-10-21", azure_endpoint=azure.url, max_retries=0)
    out = client.chat.completions.create(model="prod-gpt4o", messages=[{"role": "user", "content": "hi"}])
    assert out.choices[0].message.content == "Hello from Azure"
    stream = client.chat.completions.create(model="prod-gpt4o", messages=[{"role": "user", "content": "hi"}], stream=True)
    chunks = list(stream)
    assert chunks[0].choices == [], "Azure's prompt-filter chunk comes first"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices and c.choices[0].delta) == "Hello from Azure"
    [first, _] = azure.generation_requests()
    assert first["path"] == "/openai/deployments/prod-gpt4o/chat/completions"
    assert first["query"] == "api-version=2024-10-21"
    assert first["headers"]["api-key"] == "azure-key"

    v1 = openai.OpenAI(base_url=f"{azure.url}/openai/v1/", api_key="azure-key", max_retries=0)
    out = v1.chat.completions.create(model="prod-gpt4o", messages=[{"role": "user", "content": "hi"}])
    assert out.choices[0].message.content == "Hello from Azure"
    assert azure.generation_requests()[-1]["path"] == "/openai/v1/chat/completions"

    azure.set_default({"kind": "Status", "status": 400, "body": None})
    azure.script([{"kind": "Status", "status": 400, "body": {"error": {"code": "content_filter", "message": "filtered", "param": "prompt", "status": 400}}}])
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="prod-gpt4o", messages=[{"role": "user", "content": "bad"}])
    assert err.value.code == "content_filter"
