"""OpenAI Python SDK `client.responses` against the gateway (the Responses API Codex CLI speaks):
passed through to an OpenAI backend (gpt-*), translated to Anthropic Messages (claude-*)."""

import json

import openai
import pytest

TOOLS = [
    {
        "type": "function",
        "name": "exec_command",
        "description": "Run a shell command",
        "strict": False,
        "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]},
    },
    {"type": "web_search"},
]

INPUT = [
    {"role": "developer", "content": "You are a coding agent."},
    {"role": "user", "content": "List the files"},
]


@pytest.mark.parametrize("model,mock", [("gpt-test", "openai_primary"), ("claude-test", "anthropic")])
def test_non_stream_text_and_usage(openai_client, mocks, model, mock):
    mocks[mock].set_default({"kind": "OkWithUsage", "text": "Two files here", "input": 30, "output": 4, "cached": 10})
    response = openai_client.responses.create(model=model, input=INPUT, tools=TOOLS)
    assert response.object == "response"
    assert response.status == "completed"
    assert response.output_text == "Two files here"
    assert response.usage.input_tokens == 40
    assert response.usage.input_tokens_details.cached_tokens == 10
    assert response.usage.output_tokens == 4
    assert response.usage.total_tokens == 44
    [request] = mocks[mock].generation_requests()
    if mock == "anthropic":
        assert request["path"] == "/v1/messages"
        assert request["body"]["system"] == [{"type": "text", "text": "You are a coding agent."}]
        assert [t["name"] for t in request["body"]["tools"]] == ["exec_command"]
    else:
        assert request["path"] == "/v1/responses"
        assert request["body"]["tools"] == TOOLS


@pytest.mark.parametrize("model,mock", [("gpt-test", "openai_primary"), ("claude-test", "anthropic")])
def test_stream_events_text_and_usage(openai_client, mocks, model, mock):
    mocks[mock].set_default({"kind": "OkWithUsage", "text": "streamed words arrive", "input": 9, "output": 3, "cached": 0})
    stream = openai_client.responses.create(model=model, input=INPUT, tools=TOOLS, stream=True)
    events = list(stream)
    types = [e.type for e in events]
    assert types[0] == "response.created"
    assert types[1] == "response.in_progress"
    assert types[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == "streamed words arrive"
    final = events[-1].response
    assert final.output_text == "streamed words arrive"
    assert final.usage.input_tokens == 9
    assert final.usage.output_tokens == 3


@pytest.mark.parametrize("model,mock", [("gpt-test", "openai_primary"), ("claude-test", "anthropic")])
def test_stream_helper_tool_call(openai_client, mocks, model, mock):
    mocks[mock].set_default({"kind": "ToolCall", "name": "exec_command", "arguments": {"cmd": "ls -la"}})
    with openai_client.responses.stream(model=model, input=INPUT, tools=TOOLS) as stream:
        deltas = "".join(e.delta for e in stream if e.type == "response.function_call_arguments.delta")
        final = stream.get_final_response()
    [call] = [item for item in final.output if item.type == "function_call"]
    assert call.name == "exec_command"
    assert json.loads(call.arguments) == {"cmd": "ls -la"}
    assert deltas == call.arguments
    assert call.call_id


def test_non_stream_tool_call_and_tool_loop_to_anthropic(openai_client, mocks):
    mocks["anthropic"].script(
        [
            {"kind": "ToolCall", "name": "exec_command", "arguments": {"cmd": "ls"}},
            {"kind": "Ok", "text": "README.md and src"},
        ]
    )
    first = openai_client.responses.create(model="claude-test", input=INPUT, tools=TOOLS)
    [call] = [item for item in first.output if item.type == "function_call"]
    assert call.name == "exec_command"
    assert json.loads(call.arguments) == {"cmd": "ls"}

    # Stateless tool loop, as Codex does it: the whole input again plus the call and its output.
    follow_up = INPUT + [
        {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
        {"type": "function_call_output", "call_id": call.call_id, "output": "README.md\nsrc"},
    ]
    second = openai_client.responses.create(model="claude-test", input=follow_up, tools=TOOLS)
    assert second.output_text == "README.md and src"
    sent = mocks["anthropic"].generation_requests()[1]["body"]["messages"]
    assert sent[1] == {
        "role": "assistant",
        "content": [{"type": "tool_use", "id": call.call_id, "name": "exec_command", "input": {"cmd": "ls"}}],
    }
    assert sent[2] == {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": call.call_id, "content": "README.md\nsrc"}],
    }


def test_upstream_error_is_an_sdk_error(openai_client, mocks):
    mocks["anthropic"].set_default({"kind": "Status", "status": 400})
    with pytest.raises(openai.BadRequestError):
        openai_client.responses.create(model="claude-test", input="hi")


def test_untranslatable_request_is_rejected(openai_client, mocks):
    with pytest.raises(openai.BadRequestError) as info:
        openai_client.responses.create(model="claude-test", input="hi", previous_response_id="resp_123")
    assert "previous_response_id" in str(info.value)
    assert mocks["anthropic"].generation_requests() == []
