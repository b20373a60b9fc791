"""OpenAI Python SDK against the gateway (Chat Completions dialect)."""

import json

import openai
import pytest

from conftest import CLIENT_KEY, OPENAI_KEY

MESSAGES = [{"role": "user", "content": "Say hello"}]


def test_non_stream_text_and_usage(openai_client, mocks):
    mocks["openai_primary"].set_default({"kind": "OkWithUsage", "text": "Hello from the primary", "input": 12, "output": 4, "cached": 0})
    completion = openai_client.chat.completions.create(model="gpt-test", messages=MESSAGES)
    assert completion.choices[0].message.content == "Hello from the primary"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.prompt_tokens == 12
    assert completion.usage.completion_tokens == 4
    assert completion.usage.total_tokens == 16
    [request] = mocks["openai_primary"].generation_requests()
    assert request["body"]["model"] == "gpt-test"


def test_stream_text_and_usage(openai_client, mocks):
    mocks["openai_primary"].set_default({"kind": "OkWithUsage", "text": "streamed words arrive", "input": 9, "output": 3, "cached": 0})
    stream = openai_client.chat.completions.create(
        model="gpt-test", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    text, usage, finish = "", None, None
    for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
            finish = chunk.choices[0].finish_reason or finish
        if chunk.usage:
            usage = chunk.usage
    assert text == "streamed words arrive"
    assert finish == "stop"
    assert usage is not None and usage.prompt_tokens == 9 and usage.completion_tokens == 3


def test_stream_without_usage_has_no_usage_chunk(openai_client, mocks):
    stream = openai_client.chat.completions.create(model="gpt-test", messages=MESSAGES, stream=True)
    chunks = list(stream)
    assert all(chunk.choices for chunk in chunks), "a choices:[] chunk was sent without include_usage"


def test_tool_call_returned(openai_client, mocks):
    mocks["openai_primary"].set_default({"kind": "ToolCall", "name": "get_weather", "arguments": {"city": "Paris"}})
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]
    completion = openai_client.chat.completions.create(model="gpt-test", messages=MESSAGES, tools=tools)
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}


def test_tool_call_streamed(openai_client, mocks):
    mocks["openai_primary"].set_default({"kind": "ToolCall", "name": "get_weather", "arguments": {"city": "Oslo"}})
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    name, args = None, ""
    for chunk in openai_client.chat.completions.create(model="gpt-test", messages=MESSAGES, tools=tools, stream=True):
        for call in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            name = call.function.name or name
            args += call.function.arguments or ""
    assert name == "get_weather"
    assert json.loads(args) == {"city": "Oslo"}


def test_provider_key_replaces_client_key(openai_client, mocks):
    openai_client.chat.completions.create(model="gpt-test", messages=MESSAGES)
    [request] = mocks["openai_primary"].generation_requests()
    assert request["headers"].get("authorization") == f"Bearer {OPENAI_KEY}"
    assert CLIENT_KEY not in json.dumps(request["headers"])


def test_failover_to_second_backend_on_persistent_503(openai_client, mocks):
    mocks["openai_failing"].set_default({"kind": "Status", "status": 503})
    mocks["openai_secondary"].set_default({"kind": "Ok", "text": "answered by the secondary"})
    completion = openai_client.chat.completions.create(model="failover-test", messages=MESSAGES)
    assert completion.choices[0].message.content == "answered by the secondary"
    assert len(mocks["openai_secondary"].generation_requests()) == 1


def test_wrong_key_is_authentication_error(gateway, mocks):
    client = openai.OpenAI(base_url=f"{gateway.base_url}/v1", api_key="wrong-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="gpt-test", messages=MESSAGES)
    assert mocks["openai_primary"].generation_requests() == []


def test_unknown_model_is_not_found(openai_client):
    with pytest.raises(openai.NotFoundError):
        openai_client.chat.completions.create(model="no-such-model", messages=MESSAGES)


def test_models_list(openai_client):
    ids = {model.id for model in openai_client.models.list()}
    assert {"gpt-test", "claude-test"} <= ids, ids
