"""The gateway as Vertex AI for Claude, with the real client: the `anthropic` SDK's
`AnthropicVertex` (`base_url` at the gateway, `access_token` = the gateway token, as Claude Code
sends it with `CLAUDE_CODE_USE_VERTEX=1`, `ANTHROPIC_VERTEX_BASE_URL` and
`CLAUDE_CODE_SKIP_VERTEX_AUTH=1`) calling `…/models/{model}:rawPredict`, `:streamRawPredict` and
`count-tokens:rawPredict`, routed to an Anthropic-framed mock and an OpenAI-framed one behind it
(failover included), always answered in Anthropic's format."""

from __future__ import annotations

import tempfile
from pathlib import Path

import anthropic
import pytest
import yaml

from conftest import (ANTHROPIC_KEY, ANTHROPIC_KEY_ENV, CLIENT_KEY, CLIENT_KEY_ENV, OPENAI_KEY, OPENAI_KEY_ENV,
                      GatewayProcess, Mock, resource)

PROJECT = "my-project"
SONNET = "claude-sonnet-4@20250514"
TIMEOUTS = {"connect": "2s", "firstByte": "5s", "streamIdle": "10s", "request": "30s"}


@pytest.fixture(scope="module")
def upstreams():
    started = {"anthropic": Mock("anthropic"), "openai": Mock("openai")}
    yield started
    for mock in started.values():
        mock.stop()


@pytest.fixture(autouse=True)
def fresh(upstreams):
    for mock in upstreams.values():
        mock.reset()
    upstreams["anthropic"].set_default({"kind": "Ok", "text": "Hello from Anthropic"})
    upstreams["openai"].set_default({"kind": "Ok", "text": "Hello from OpenAI"})
    yield


@pytest.fixture(scope="module")
def gw(upstreams):
    """`claude-*` (Anthropic's spelling, which Vertex ids are routed by) → Anthropic, then OpenAI;
    the Vertex id `claude-opus-4@20250514` is aliased to `gpt-4.1` on OpenAI."""
    config = [
        resource("AIBackend", "anthropic", {
            "provider": "Anthropic",
            "endpoint": upstreams["anthropic"].url,
            "credentials": {"env": ANTHROPIC_KEY_ENV},
            "models": [{"name": "claude-sonnet-4-20250514"}],
            "timeouts": TIMEOUTS,
        }),
        resource("AIBackend", "openai", {
            "provider": "OpenAI",
            "endpoint": upstreams["openai"].url,
            "credentials": {"env": OPENAI_KEY_ENV},
            "models": [{"name": "claude-sonnet-4-20250514", "providerModel": "gpt-4.1"}, {"name": "gpt-4.1"}],
            "timeouts": TIMEOUTS,
        }),
        resource("AIRoute", "vertex-front", {
            "pathPrefix": "/",
            "auth": {"apiKeys": [{"name": "e2e", "env": CLIENT_KEY_ENV}]},
            "aliases": [{"pattern": "claude-opus-4@20250514", "target": "gpt-4.1"}],
            "rules": [
                {"models": ["claude-*"], "backends": [{"name": "anthropic", "priority": 0}, {"name": "openai", "priority": 1}]},
                {"models": ["gpt-4.1"], "backends": [{"name": "openai"}]},
            ],
            "retry": {"backoff": "50ms", "streamContinuation": "Off"},
        }),
    ]
    config_dir = Path(tempfile.mkdtemp(prefix="switchboard-py-vertex-"))
    (config_dir / "config.yaml").write_text(yaml.safe_dump_all(config, sort_keys=False))
    process = GatewayProcess(config_dir, {CLIENT_KEY_ENV: CLIENT_KEY, ANTHROPIC_KEY_ENV: ANTHROPIC_KEY,
                                          OPENAI_KEY_ENV: OPENAI_KEY})
    yield process
    process.stop()


def vertex(gw: GatewayProcess, token: str = CLIENT_KEY, region: str = "us-east5") -> anthropic.AnthropicVertex:
    return anthropic.AnthropicVertex(base_url=f"{gw.base_url}/v1", region=region, project_id=PROJECT,
                                     access_token=token, max_retries=0)


def user(text: str = "hi") -> list[dict]:
    return [{"role": "user", "content": text}]


def test_create_is_served_by_the_route_for_the_paths_model(gw, upstreams):
    msg = vertex(gw).messages.create(model=SONNET, max_tokens=64, messages=user())
    assert msg.content[0].text == "Hello from Anthropic"
    assert msg.stop_reason == "end_turn"
    assert msg.usage.input_tokens > 0
    [req] = upstreams["anthropic"].generation_requests()
    assert req["path"] == "/v1/messages"
    assert req["body"]["model"] == "claude-sonnet-4-20250514", "the Vertex id is routed in Anthropic's spelling"
    assert "anthropic_version" not in req["body"]
    assert req["headers"]["x-api-key"] == ANTHROPIC_KEY
    assert CLIENT_KEY not in str(req["headers"]), "the gateway token stays at the gateway"


def test_stream_is_anthropic_sse(gw, upstreams):
    with vertex(gw, region="global").messages.stream(model=SONNET, max_tokens=64, messages=user()) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    assert text == "Hello from Anthropic"
    assert final.stop_reason == "end_turn"
    [req] = upstreams["anthropic"].generation_requests()
    assert req["body"]["stream"] is True


def test_count_tokens(gw, upstreams):
    count = vertex(gw).messages.count_tokens(model=SONNET, messages=user("count these words please"))
    assert count.input_tokens > 0
    [req] = upstreams["anthropic"].generation_requests()
    assert req["path"] == "/v1/messages/count_tokens"
    assert req["body"]["model"] == "claude-sonnet-4-20250514"


def test_any_backend_answers_in_anthropics_format(gw, upstreams):
    # A Vertex-only alias to an OpenAI model.
    msg = vertex(gw).messages.create(model="claude-opus-4@20250514", max_tokens=64, messages=user())
    assert msg.content[0].text == "Hello from OpenAI"
    [req] = upstreams["openai"].generation_requests()
    assert (req["path"], req["body"]["model"]) == ("/v1/chat/completions", "gpt-4.1")

    # Failover from Anthropic to OpenAI mid-chain, streamed.
    upstreams["anthropic"].set_default({"kind": "Status", "status": 529})
    with vertex(gw).messages.stream(model=SONNET, max_tokens=64, messages=user()) as s:
        assert "".join(s.text_stream) == "Hello from OpenAI"
    assert len(upstreams["anthropic"].generation_requests()) == 1
    assert upstreams["openai"].generation_requests()[-1]["body"]["model"] == "gpt-4.1"


def test_errors_are_sdk_errors(gw, upstreams):
    with pytest.raises(anthropic.AuthenticationError):
        vertex(gw, token="not-the-gateway-token").messages.create(model=SONNET, max_tokens=64, messages=user())
    upstreams["anthropic"].script([{"kind": "Status", "status": 400}])
    with pytest.raises(anthropic.BadRequestError):
        vertex(gw).messages.create(model=SONNET, max_tokens=64, messages=user())
    assert upstreams["openai"].generation_requests() == [], "a client error is not failed over"
