"""LangChain through the gateway, as docs/agents/langchain.md sets it up (issue #16): ChatOpenAI
with the token from `switchboard-token` fetched per request, ChatAnthropic with a token fetched at
start; invoke, stream (with usage) and tool calls, on a GPT model and on a Claude model through
each client (the gateway translates). A stand-in `switchboard-token` on PATH prints the route's API
key (the helper itself is tested in e2e/tests/token_helper.rs)."""

from __future__ import annotations

import os
import stat
import subprocess

import pytest
from langchain_anthropic import ChatAnthropic
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI

from conftest import CLIENT_KEY


@pytest.fixture(autouse=True)
def token_helper_on_path(tmp_path, monkeypatch):
    helper = tmp_path / "switchboard-token"
    helper.write_text(f"#!/bin/sh\nprintf '%s\\n' '{CLIENT_KEY}'\n")
    helper.chmod(helper.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")


# --- the code of docs/agents/langchain.md ---------------------------------------------------


def switchboard_token() -> str:
    return subprocess.run(["switchboard-token"], check=True, capture_output=True, text=True).stdout.strip()


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


# ---------------------------------------------------------------------------------------------


def chat_openai(gateway, model: str) -> ChatOpenAI:
    return ChatOpenAI(
        base_url=f"{gateway.base_url}/v1",
        api_key=switchboard_token,  # called before every request: a fresh token each time
        model=model,
        stream_usage=True,
        max_retries=0,
    )


def chat_anthropic(gateway, model: str) -> ChatAnthropic:
    return ChatAnthropic(
        base_url=gateway.base_url,
        api_key=switchboard_token(),
        model=model,
        max_tokens=256,
        max_retries=0,
    )


@pytest.mark.parametrize("model", ["gpt-4.1", "claude-test"])
def test_chat_openai_invokes_streams_and_calls_tools(gateway, mocks, model):
    llm = chat_openai(gateway, model)
    for mock in mocks.values():
        mock.set_default({"kind": "OkWithUsage", "text": "Hello from LangChain", "input": 12, "output": 4})
    assert llm.invoke("Say hello").content == "Hello from LangChain"

    chunks = list(llm.stream("Say hello"))
    assert "".join(c.content for c in chunks) == "Hello from LangChain"
    usage = [c.usage_metadata for c in chunks if c.usage_metadata]
    assert usage and usage[-1]["output_tokens"] == 4

    for mock in mocks.values():
        mock.set_default({"kind": "ToolCall", "name": "get_weather", "arguments": {"city": "Paris"}})
    message = llm.bind_tools([get_weather]).invoke("Weather in Paris?")
    assert [(c["name"], c["args"]) for c in message.tool_calls] == [("get_weather", {"city": "Paris"})]


@pytest.mark.parametrize("model", ["claude-test", "gpt-4.1"])
def test_chat_anthropic_invokes_streams_and_calls_tools(gateway, mocks, model):
    llm = chat_anthropic(gateway, model)
    for mock in mocks.values():
        mock.set_default({"kind": "OkWithUsage", "text": "Hello from LangChain", "input": 12, "output": 4})
    assert llm.invoke("Say hello").content == "Hello from LangChain"

    chunks = list(llm.stream("Say hello"))
    assert "".join(c.content if isinstance(c.content, str) else "" for c in chunks) == "Hello from LangChain"
    usage = [c.usage_metadata for c in chunks if c.usage_metadata]
    assert usage and sum(u["output_tokens"] for u in usage) >= 4

    for mock in mocks.values():
        mock.set_default({"kind": "ToolCall", "name": "get_weather", "arguments": {"city": "Paris"}})
    message = llm.bind_tools([get_weather]).invoke("Weather in Paris?")
    assert [(c["name"], c["args"]) for c in message.tool_calls] == [("get_weather", {"city": "Paris"})]

    # The token went as the SDK sends it (Bearer) and never upstream.
    sent = [r for m in mocks.values() for r in m.generation_requests()]
    assert sent
    assert all(CLIENT_KEY not in str(r["headers"]) for r in sent)
