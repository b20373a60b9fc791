"""Anthropic Python SDK against the gateway (Messages dialect)."""

import json

import anthropic
import pytest

from conftest import ANTHROPIC_KEY, CLIENT_KEY

MESSAGES = [{"role": "user", "content": "Say hello"}]


def test_non_stream_text_usage_and_stop_reason(anthropic_client, mocks):
    mocks["anthropic"].set_default({"kind": "OkWithUsage", "text": "Hello from Claude mock", "input": 20, "output": 5, "cached": 7})
    message = anthropic_client.messages.create(model="claude-test", max_tokens=64, messages=MESSAGES)
    assert message.content[0].type == "text"
    assert message.content[0].text == "Hello from Claude mock"
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens == 20
    assert message.usage.output_tokens == 5
    assert message.usage.cache_read_input_tokens == 7


def test_stream_text_usage_and_stop_reason(anthropic_client, mocks):
    mocks["anthropic"].set_default({"kind": "OkWithUsage", "text": "several streamed words", "input": 8, "output": 3, "cached": 0})
    with anthropic_client.messages.stream(model="claude-test", max_tokens=64, messages=MESSAGES) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "several streamed words"
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 3
    assert final.usage.input_tokens == 8


def test_tool_use_returned(anthropic_client, mocks):
    mocks["anthropic"].set_default({"kind": "ToolCall", "name": "get_weather", "arguments": {"city": "Rome"}})
    tools = [{"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]
    message = anthropic_client.messages.create(model="claude-test", max_tokens=64, messages=MESSAGES, tools=tools)
    assert message.stop_reason == "tool_use"
    block = message.content[0]
    assert block.type == "tool_use" and block.name == "get_weather" and block.input == {"city": "Rome"}


def test_count_tokens(anthropic_client, mocks):
    result = anthropic_client.messages.count_tokens(model="claude-test", messages=MESSAGES)
    assert result.input_tokens > 0
    paths = [r["path"] for r in mocks["anthropic"].generation_requests()]
    assert any(p.endswith("/messages/count_tokens") for p in paths), paths


def test_provider_key_replaces_client_key(anthropic_client, mocks):
    anthropic_client.messages.create(model="claude-test", max_tokens=16, messages=MESSAGES)
    [request] = mocks["anthropic"].generation_requests()
    assert request["headers"].get("x-api-key") == ANTHROPIC_KEY
    assert request["headers"].get("anthropic-version"), "anthropic-version forwarded (the SDK's own value)"
    assert CLIENT_KEY not in json.dumps(request["headers"])


def test_wrong_key_is_authentication_error(gateway, mocks):
    client = anthropic.Anthropic(base_url=gateway.base_url, api_key="wrong-key", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError):
        client.messages.create(model="claude-test", max_tokens=16, messages=MESSAGES)
    assert mocks["anthropic"].generation_requests() == []


def test_upstream_overload_surfaces_as_typed_error(anthropic_client, mocks):
    mocks["anthropic"].set_default({"kind": "Status", "status": 400})
    with pytest.raises(anthropic.BadRequestError):
        anthropic_client.messages.create(model="claude-test", max_tokens=16, messages=MESSAGES)


def test_anthropic_sdk_to_openai_backend(anthropic_client, mocks):
    """Cross-dialect: an Anthropic client routed to an OpenAI upstream."""
    mocks["openai_primary"].set_default({"kind": "Ok", "text": "translated answer"})
    message = anthropic_client.messages.create(model="gpt-test", max_tokens=64, messages=MESSAGES)
    assert message.content[0].text == "translated answer"
    [request] = mocks["openai_primary"].generation_requests()
    assert request["path"].endswith("/chat/completions")
