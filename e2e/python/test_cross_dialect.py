"""Cross-dialect SDK tests: each official SDK against a mock upstream of the *other* format.

openai SDK → gateway → Anthropic mock (model `claude-test`), and anthropic SDK → gateway → OpenAI mock
(model `gpt-test`), streaming and not, with tools; asserting what the SDK itself reports.
"""

import json

MESSAGES = [{"role": "user", "content": "Say hello"}]
OPENAI_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
]
ANTHROPIC_TOOLS = [
    {
        "name": "get_weather",
        "description": "Weather for a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
]


# --- openai SDK -> Anthropic backend -------------------------------------------------------------


def test_openai_sdk_to_anthropic_text_usage_and_finish(openai_client, mocks):
    mocks["anthropic"].set_default({"kind": "OkWithUsage", "text": "Hello from Claude", "input": 20, "output": 5, "cached": 7})
    completion = openai_client.chat.completions.create(model="claude-test", messages=MESSAGES)
    choice = completion.choices[0]
    assert choice.message.content == "Hello from Claude"
    assert choice.finish_reason == "stop"
    # OpenAI prompt_tokens include cached tokens; Anthropic input_tokens exclude them.
    assert completion.usage.prompt_tokens == 27
    assert completion.usage.prompt_tokens_details.cached_tokens == 7
    assert completion.usage.completion_tokens == 5
    assert completion.usage.total_tokens == 32
    [request] = mocks["anthropic"].generation_requests()
    assert request["path"].endswith("/v1/messages")
    assert request["body"]["max_tokens"] == 4096
    assert request["body"]["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Say hello"}]}]
    assert "authorization" not in {k.lower() for k in request["headers"]}, "client bearer never reaches Anthropic"


def test_openai_sdk_to_anthropic_stream_with_usage(openai_client, mocks):
    mocks["anthropic"].set_default({"kind": "OkWithUsage", "text": "several streamed words", "input": 8, "output": 3, "cached": 2})
    stream = openai_client.chat.completions.create(
        model="claude-test", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    usage = [c.usage for c in chunks if c.usage]
    assert text == "several streamed words"
    assert finish == ["stop"]
    assert len(usage) == 1 and usage[0].prompt_tokens == 10 and usage[0].completion_tokens == 3
    assert usage[0].prompt_tokens_details.cached_tokens == 2
    assert chunks[0].choices[0].delta.role == "assistant"
    assert len({c.id for c in chunks}) == 1, "one id for every chunk"


def test_openai_sdk_to_anthropic_stream_without_usage_has_no_usage_chunk(openai_client, mocks):
    mocks["anthropic"].set_default({"kind": "Ok", "text": "no usage please"})
    chunks = list(openai_client.chat.completions.create(model="claude-test", messages=MESSAGES, stream=True))
    assert all(chunk.choices for chunk in chunks), "a choices:[] chunk was sent without include_usage"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "no usage please"


def test_openai_sdk_to_anthropic_tool_call(openai_client, mocks):
    mocks["anthropic"].set_default({"kind": "ToolCall", "name": "get_weather", "arguments": {"city": "Rome"}})
    completion = openai_client.chat.completions.create(
        model="claude-test", messages=MESSAGES, tools=OPENAI_TOOLS, tool_choice="required", parallel_tool_calls=False
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    [call] = choice.message.tool_calls
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Rome"}
    [request] = mocks["anthropic"].generation_requests()
    assert request["body"]["tools"][0]["input_schema"]["required"] == ["city"]
    assert request["body"]["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}


def test_openai_sdk_to_anthropic_tool_call_streamed(openai_client, mocks):
    mocks["anthropic"].set_default({"kind": "ToolCall", "name": "get_weather", "arguments": {"city": "Oslo"}})
    name, call_id, args, finish = None, None, "", None
    for chunk in openai_client.chat.completions.create(model="claude-test", messages=MESSAGES, tools=OPENAI_TOOLS, stream=True):
        if not chunk.choices:
            continue
        finish = chunk.choices[0].finish_reason or finish
        for call in chunk.choices[0].delta.tool_calls or []:
            assert call.index == 0
            name = call.function.name or name
            call_id = call.id or call_id
            args += call.function.arguments or ""
    assert name == "get_weather" and call_id
    assert json.loads(args) == {"city": "Oslo"}
    assert finish == "tool_calls"


def test_openai_sdk_tool_loop_to_anthropic_pairs_results(openai_client, mocks):
    mocks["anthropic"].set_default({"kind": "Ok", "text": "It is sunny"})
    messages = [
        {"role": "user", "content": "Weather in Rome and Oslo?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'}},
                {"id": "functions.get_weather:1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}},
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        {"role": "tool", "tool_call_id": "functions.get_weather:1", "content": "rain"},
    ]
    completion = openai_client.chat.completions.create(model="claude-test", messages=messages, tools=OPENAI_TOOLS)
    assert completion.choices[0].message.content == "It is sunny"
    [request] = mocks["anthropic"].generation_requests()
    sent = request["body"]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    uses = [b["id"] for b in sent[1]["content"] if b["type"] == "tool_use"]
    results = [b["tool_use_id"] for b in sent[2]["content"] if b["type"] == "tool_result"]
    assert uses == results and uses[0] == "call_1"
    assert all(c.isalnum() or c in "_-" for c in uses[1]), uses[1]


def test_openai_sdk_untranslatable_field_is_a_clear_400(openai_client, mocks):
    import openai

    try:
        openai_client.chat.completions.create(model="claude-test", messages=MESSAGES, n=2)
    except openai.BadRequestError as e:
        assert "n" in str(e) and "Anthropic" in str(e)
    else:
        raise AssertionError("n=2 must be rejected for an Anthropic backend")
    assert mocks["anthropic"].generation_requests() == []


def test_openai_sdk_sees_anthropic_errors_in_openai_shape(openai_client, mocks):
    import openai

    mocks["anthropic"].set_default({"kind": "Status", "status": 400})
    try:
        openai_client.chat.completions.create(model="claude-test", messages=MESSAGES)
    except openai.BadRequestError as e:
        assert e.body["type"] == "invalid_request_error"
    else:
        raise AssertionError("expected BadRequestError")


# --- anthropic SDK -> OpenAI backend -------------------------------------------------------------


def test_anthropic_sdk_to_openai_text_usage_and_stop_reason(anthropic_client, mocks):
    mocks["openai_primary"].set_default({"kind": "OkWithUsage", "text": "Hello from GPT", "input": 12, "output": 4, "cached": 5})
    message = anthropic_client.messages.create(
        model="gpt-test", max_tokens=64, system="Be brief", messages=MESSAGES,
        extra_headers={"anthropic-beta": "interleaved-thinking-2025-05-14"},
    )
    assert message.content[0].type == "text" and message.content[0].text == "Hello from GPT"
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens == 12
    assert message.usage.cache_read_input_tokens == 5
    assert message.usage.output_tokens == 4
    [request] = mocks["openai_primary"].generation_requests()
    assert request["path"].endswith("/v1/chat/completions")
    assert request["body"]["messages"][0] == {"role": "system", "content": "Be brief"}
    assert request["body"]["max_completion_tokens"] == 64
    headers = {k.lower() for k in request["headers"]}
    assert "anthropic-version" not in headers and "x-api-key" not in headers and "anthropic-beta" not in headers


def test_anthropic_sdk_to_openai_stream(anthropic_client, mocks):
    mocks["openai_primary"].set_default({"kind": "OkWithUsage", "text": "streamed from gpt", "input": 9, "output": 3, "cached": 0})
    with anthropic_client.messages.stream(model="gpt-test", max_tokens=64, messages=MESSAGES) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "streamed from gpt"
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 3
    [request] = mocks["openai_primary"].generation_requests()
    assert request["body"]["stream_options"] == {"include_usage": True}


def test_anthropic_sdk_to_openai_tool_use(anthropic_client, mocks):
    mocks["openai_primary"].set_default({"kind": "ToolCall", "name": "get_weather", "arguments": {"city": "Paris"}})
    message = anthropic_client.messages.create(
        model="gpt-test", max_tokens=64, messages=MESSAGES, tools=ANTHROPIC_TOOLS, tool_choice={"type": "any"}
    )
    assert message.stop_reason == "tool_use"
    [block] = message.content
    assert block.type == "tool_use" and block.name == "get_weather" and block.input == {"city": "Paris"}
    [request] = mocks["openai_primary"].generation_requests()
    assert request["body"]["tool_choice"] == "required"
    assert request["body"]["tools"][0]["function"]["parameters"]["required"] == ["city"]


def test_anthropic_sdk_to_openai_tool_use_streamed(anthropic_client, mocks):
    mocks["openai_primary"].set_default({"kind": "ToolCall", "name": "get_weather", "arguments": {"city": "Lima"}})
    with anthropic_client.messages.stream(model="gpt-test", max_tokens=64, messages=MESSAGES, tools=ANTHROPIC_TOOLS) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    [block] = [b for b in final.content if b.type == "tool_use"]
    assert block.name == "get_weather" and block.input == {"city": "Lima"}


def test_anthropic_sdk_long_tool_names_round_trip_through_openai(anthropic_client, mocks):
    long_name = "mcp__enterprise_github_server__create_pull_request_review_comment_with_suggestions"
    assert len(long_name) > 64
    mocks["openai_primary"].set_default({"kind": "ToolCall", "name": "placeholder", "arguments": {}})
    tools = [{"name": long_name, "input_schema": {"type": "object", "properties": {}}}]
    anthropic_client.messages.create(model="gpt-test", max_tokens=64, messages=MESSAGES, tools=tools)
    [request] = mocks["openai_primary"].generation_requests()
    short = request["body"]["tools"][0]["function"]["name"]
    assert len(short) <= 64
    mocks["openai_primary"].reset()
    mocks["openai_primary"].set_default({"kind": "ToolCall", "name": short, "arguments": {"a": 1}})
    message = anthropic_client.messages.create(model="gpt-test", max_tokens=64, messages=MESSAGES, tools=tools)
    assert message.content[0].name == long_name, "the client sees its own tool name"


def test_anthropic_sdk_tool_loop_to_openai(anthropic_client, mocks):
    mocks["openai_primary"].set_default({"kind": "Ok", "text": "done"})
    messages = [
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "let me check", "signature": "sig"},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Rome"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny", "cache_control": {"type": "ephemeral"}},
                {"type": "text", "text": "and tomorrow?"},
            ],
        },
    ]
    message = anthropic_client.messages.create(model="gpt-test", max_tokens=64, messages=messages, tools=ANTHROPIC_TOOLS)
    assert message.content[0].text == "done"
    [request] = mocks["openai_primary"].generation_requests()
    sent = request["body"]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool", "user"]
    assert sent[1]["tool_calls"][0]["id"] == "toolu_1" and sent[2]["tool_call_id"] == "toolu_1"


def test_anthropic_sdk_sees_openai_errors_in_anthropic_shape(anthropic_client, mocks):
    import anthropic

    mocks["openai_primary"].set_default({"kind": "Status", "status": 404})
    mocks["openai_secondary"].set_default({"kind": "Status", "status": 404})
    try:
        anthropic_client.messages.create(model="gpt-test", max_tokens=16, messages=MESSAGES)
    except anthropic.APIStatusError as e:
        assert e.body["type"] == "error"
        assert e.status_code == 404 and e.body["error"]["type"] == "not_found_error"
    else:
        raise AssertionError("expected an error")


def test_anthropic_count_tokens_on_openai_backend_is_a_labelled_estimate(anthropic_client, mocks):
    raw = anthropic_client.messages.with_raw_response.count_tokens(model="gpt-test", messages=MESSAGES)
    assert raw.headers.get("x-switchboard-estimate") == "true"
    assert raw.parse().input_tokens > 0
    assert mocks["openai_primary"].generation_requests() == []


def test_openai_sdk_images_reach_anthropic_as_image_blocks(openai_client, mocks):
    mocks["anthropic"].set_default({"kind": "Ok", "text": "a red dot"})
    content = [
        {"type": "text", "text": "What is in these?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "image_url", "image_url": {"url": "https://example.com/dot.jpg", "detail": "low"}},
    ]
    completion = openai_client.chat.completions.create(model="claude-test", messages=[{"role": "user", "content": content}])
    assert completion.choices[0].message.content == "a red dot"
    [request] = mocks["anthropic"].generation_requests()
    blocks = request["body"]["messages"][0]["content"]
    assert blocks[1] == {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
    assert blocks[2] == {"type": "image", "source": {"type": "url", "url": "https://example.com/dot.jpg"}}


def test_anthropic_sdk_images_reach_openai_as_image_parts(anthropic_client, mocks):
    mocks["openai_primary"].set_default({"kind": "Ok", "text": "a blue dot"})
    content = [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
        {"type": "text", "text": "What is this?"},
    ]
    message = anthropic_client.messages.create(model="gpt-test", max_tokens=32, messages=[{"role": "user", "content": content}])
    assert message.content[0].text == "a blue dot"
    [request] = mocks["openai_primary"].generation_requests()
    parts = request["body"]["messages"][0]["content"]
    assert parts[0] == {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    assert parts[1] == {"type": "text", "text": "What is this?"}
