"""What coding agents need beyond plain chat, checked with the official SDKs (issue #16):
Claude Code's system messages inside `messages` on an OpenAI model, model discovery in the
Anthropic list shape (the SDK's own pagination), the OpenAI shape kept for OpenAI clients, and
`count_tokens` counted with the OpenAI tokenizer."""

import anthropic


def test_system_messages_inside_messages_reach_openai_in_place(anthropic_client, mocks):
    mocks["openai_primary"].set_default({"kind": "Ok", "text": "done"})
    message = anthropic_client.messages.create(
        model="gpt-4.1",
        max_tokens=64,
        system=[
            {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.328.593; cc_entrypoint=sdk-cli;"},
            {"type": "text", "text": "You are an agent."},
        ],
        messages=[
            {"role": "user", "content": "hi"},
            {"role": "system", "content": [{"type": "text", "text": "# Environment", "cache_control": {"type": "ephemeral"}}]},
            {"role": "assistant", "content": "hello"},
            {"role": "system", "content": "# Environment, later"},
            {"role": "user", "content": "go"},
        ],
        extra_headers={"anthropic-beta": "mid-conversation-tool-changes-2026-07-01"},
    )
    assert message.content[0].text == "done"
    [request] = mocks["openai_primary"].generation_requests()
    assert request["body"]["messages"] == [
        {"role": "system", "content": "You are an agent."},
        {"role": "user", "content": "hi"},
        {"role": "system", "content": "# Environment"},
        {"role": "assistant", "content": "hello"},
        {"role": "system", "content": "# Environment, later"},
        {"role": "user", "content": "go"},
    ]


def test_anthropic_sdk_lists_models_across_pages(anthropic_client):
    first = anthropic_client.models.list(limit=2)
    assert [m.id for m in first.data] == ["claude-test", "failover-test"]
    assert first.has_more is True
    assert first.first_id == "claude-test" and first.last_id == "failover-test"
    # The SDK walks the pages itself with after_id.
    ids = [m.id for m in anthropic_client.models.list(limit=2)]
    assert ids == ["claude-test", "failover-test", "gpt-4.1", "gpt-test"]
    model = first.data[0]
    assert model.type == "model" and model.display_name == "claude-test"


def test_openai_sdk_keeps_the_openai_list(openai_client):
    models = list(openai_client.models.list())
    assert {m.id for m in models} == {"claude-test", "failover-test", "gpt-4.1", "gpt-test"}
    assert all(m.object == "model" and m.owned_by == "switchboard" for m in models)


def test_count_tokens_on_an_openai_model_uses_its_tokenizer(anthropic_client, mocks):
    raw = anthropic_client.messages.with_raw_response.count_tokens(
        model="gpt-4.1", messages=[{"role": "user", "content": "hello world"}]
    )
    # 2 tokens of text, 3 of message framing, 1 for the role, 3 priming the reply.
    assert raw.parse().input_tokens == 9
    assert raw.headers.get("x-switchboard-tokenizer") == "o200k_base"
    assert raw.headers.get("x-switchboard-estimate") is None
    assert mocks["openai_primary"].generation_requests() == []


def test_bad_pagination_is_an_anthropic_error(anthropic_client):
    try:
        anthropic_client.models.list(limit=0)
    except anthropic.BadRequestError as e:
        assert e.body["error"]["type"] == "invalid_request_error"
    else:
        raise AssertionError("expected a 400")
