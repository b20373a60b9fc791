"""The official SDKs configured with provider-prefixed base URLs (`<gateway>/openai/v1`,
`<gateway>/anthropic`), the layout some tools expect from other gateways."""

import anthropic
import openai
import pytest

from conftest import ANTHROPIC_KEY, CLIENT_KEY, OPENAI_KEY

MESSAGES = [{"role": "user", "content": "Say hello"}]


@pytest.fixture
def openai_prefixed(gateway):
    return openai.OpenAI(base_url=f"{gateway.base_url}/openai/v1", api_key=CLIENT_KEY, max_retries=0, timeout=20)


@pytest.fixture
def anthropic_prefixed(gateway):
    return anthropic.Anthropic(base_url=f"{gateway.base_url}/anthropic", api_key=CLIENT_KEY, max_retries=0, timeout=20)


def test_openai_chat_and_responses_under_the_openai_prefix(openai_prefixed, mocks):
    mocks["openai_primary"].set_default({"kind": "OkWithUsage", "text": "prefixed hello", "input": 5, "output": 2, "cached": 0})
    completion = openai_prefixed.chat.completions.create(model="gpt-test", messages=MESSAGES)
    assert completion.choices[0].message.content == "prefixed hello"
    stream = openai_prefixed.chat.completions.create(model="gpt-test", messages=MESSAGES, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "prefixed hello"
    response = openai_prefixed.responses.create(model="gpt-test", input="Say hello")
    assert response.output_text == "prefixed hello"
    sent = mocks["openai_primary"].generation_requests()
    assert [r["path"] for r in sent] == ["/v1/chat/completions", "/v1/chat/completions", "/v1/responses"]
    assert all(r["headers"]["authorization"] == f"Bearer {OPENAI_KEY}" for r in sent)


def test_anthropic_messages_and_count_tokens_under_the_anthropic_prefix(anthropic_prefixed, mocks):
    mocks["anthropic"].set_default({"kind": "OkWithUsage", "text": "prefixed claude", "input": 7, "output": 3, "cached": 0})
    message = anthropic_prefixed.messages.create(model="claude-test", max_tokens=64, messages=MESSAGES)
    assert message.content[0].text == "prefixed claude"
    with anthropic_prefixed.messages.stream(model="claude-test", max_tokens=64, messages=MESSAGES) as stream:
        assert "".join(stream.text_stream) == "prefixed claude"
    # gpt-4.1 is counted by the gateway (its tokenizer), claude-test by the Anthropic upstream.
    counted = anthropic_prefixed.messages.count_tokens(model="gpt-4.1", messages=[{"role": "user", "content": "hello world"}])
    assert counted.input_tokens == 9
    anthropic_prefixed.messages.count_tokens(model="claude-test", messages=MESSAGES)
    sent = mocks["anthropic"].generation_requests()
    assert [r["path"] for r in sent] == ["/v1/messages", "/v1/messages", "/v1/messages/count_tokens"]
    assert all(r["headers"]["x-api-key"] == ANTHROPIC_KEY for r in sent)
    assert all(CLIENT_KEY not in str(r["headers"]) for r in sent)


def test_models_lists_take_the_prefixes_shape(openai_prefixed, anthropic_prefixed):
    assert "gpt-test" in [m.id for m in openai_prefixed.models.list()]
    page = anthropic_prefixed.models.list()
    assert "claude-test" in [m.id for m in page.data]
    assert all(m.type == "model" for m in page.data)


def test_an_endpoint_of_the_other_surface_is_not_found_in_the_prefixes_dialect(gateway):
    wrong = anthropic.Anthropic(base_url=f"{gateway.base_url}/openai", api_key=CLIENT_KEY, max_retries=0, timeout=20)
    with pytest.raises(anthropic.NotFoundError) as caught:
        wrong.messages.create(model="claude-test", max_tokens=64, messages=MESSAGES)
    # OpenAI shape: {"error": {...}} without Anthropic's top-level "type": "error".
    body = caught.value.body
    assert isinstance(body, dict) and "message" in body["error"] and body.get("type") is None, body
