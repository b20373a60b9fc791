"""The gateway as Amazon Bedrock, with the real clients: boto3 `bedrock-runtime` (converse,
converse_stream, invoke_model, invoke_model_with_response_stream, with `endpoint_url` at the
gateway) and the `anthropic` SDK's `AnthropicBedrock`, reaching a Bedrock-framed mock (a
`provider: Bedrock` backend, SigV4-signed by the gateway and verified by the mock) and an
Anthropic-framed mock behind it, including failover from one to the other mid-chain.

boto3 signs every request with SigV4 over http (it sends `AWS_BEARER_TOKEN_BEDROCK` only to https
endpoints); the gateway ignores that signature, so the gateway key travels in `x-api-key`, added
by a botocore hook. `AnthropicBedrock(api_key=…)` sends it as `Authorization: Bearer`."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import boto3
import pytest
import yaml
from botocore.config import Config
from botocore.exceptions import ClientError, EventStreamError

from conftest import ANTHROPIC_KEY, ANTHROPIC_KEY_ENV, CLIENT_KEY, CLIENT_KEY_ENV, GatewayProcess, Mock, resource

REGION = "us-east-1"
AKID = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
CLAUDE = "us.anthropic.claude-sonnet-4-20250514-v1:0"
NOVA = "amazon.nova-pro-v1:0"
TIMEOUTS = {"connect": "2s", "firstByte": "5s", "streamIdle": "10s", "request": "30s"}


@pytest.fixture(scope="module")
def upstreams():
    bedrock = Mock("bedrock", ["--aws-region", REGION, "--aws-secret", SECRET])
    anthropic = Mock("anthropic")
    yield {"bedrock": bedrock, "anthropic": anthropic}
    bedrock.stop()
    anthropic.stop()


@pytest.fixture(autouse=True)
def fresh(upstreams):
    for mock in upstreams.values():
        mock.reset()
    yield


@pytest.fixture(scope="module")
def gw(upstreams):
    config = [
        resource("AIBackend", "bedrock", {
            "provider": "Bedrock",
            "endpoint": upstreams["bedrock"].url,
            "bedrock": {"region": REGION},
            "credentials": {"aws": {"environment": {}}},
            "models": [{"name": "claude-sonnet-4", "providerModel": CLAUDE}, {"name": "nova", "providerModel": NOVA}],
            "timeouts": TIMEOUTS,
        }),
        resource("AIBackend", "anthropic", {
            "provider": "Anthropic",
            "endpoint": upstreams["anthropic"].url,
            "credentials": {"env": ANTHROPIC_KEY_ENV},
            "models": [{"name": "claude-sonnet-4", "providerModel": "claude-sonnet-4-20250514"}],
            "timeouts": TIMEOUTS,
        }),
        resource("AIRoute", "bedrock-front", {
            "pathPrefix": "/",
            "auth": {"apiKeys": [{"name": "e2e", "env": CLIENT_KEY_ENV}]},
            "aliases": [
                {"pattern": "*anthropic.claude-sonnet-4-*", "target": "claude-sonnet-4"},
                {"pattern": "gpt-4*", "target": "claude-sonnet-4"},
                {"pattern": NOVA, "target": "nova"},
            ],
            "rules": [
                {"models": ["claude-*"], "backends": [{"name": "bedrock", "priority": 0}, {"name": "anthropic", "priority": 1}]},
                {"models": ["nova"], "backends": [{"name": "bedrock"}]},
            ],
            "retry": {"backoff": "50ms", "streamContinuation": "Off"},
        }),
    ]
    config_dir = Path(tempfile.mkdtemp(prefix="switchboard-py-bedrock-"))
    (config_dir / "config.yaml").write_text(yaml.safe_dump_all(config, sort_keys=False))
    process = GatewayProcess(config_dir, {
        CLIENT_KEY_ENV: CLIENT_KEY,
        ANTHROPIC_KEY_ENV: ANTHROPIC_KEY,
        "AWS_ACCESS_KEY_ID": AKID,
        "AWS_SECRET_ACCESS_KEY": SECRET,
    })
    yield process
    process.stop()


def runtime(gw: GatewayProcess, key: str | None = CLIENT_KEY):
    """A boto3 bedrock-runtime client at the gateway (signing with keys the gateway ignores)."""
    client = boto3.client(
        "bedrock-runtime",
        endpoint_url=gw.base_url,
        region_name=REGION,
        aws_access_key_id="AKIDCLIENT",
        aws_secret_access_key="client-secret-the-gateway-never-sees",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )
    if key is not None:
        def add_key(request, **_):
            request.headers["x-api-key"] = key
        client.meta.events.register("before-sign.bedrock-runtime.*", add_key)
    return client


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": [{"text": text}]}]


def invoke_body(text: str = "hi") -> str:
    return json.dumps({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 64,
                       "anthropic_beta": ["interleaved-thinking-2025-05-14", "claude-code-20250219"],
                       "messages": [{"role": "user", "content": text}]})


def test_converse_and_converse_stream(gw, upstreams):
    upstreams["bedrock"].set_default({"kind": "OkWithUsage", "text": "Hello from Nova", "input": 12, "output": 4, "cached": 0})
    out = runtime(gw).converse(modelId=NOVA, messages=user("hi"), inferenceConfig={"maxTokens": 32})
    assert out["output"]["message"]["content"] == [{"text": "Hello from Nova"}]
    assert out["stopReason"] == "end_turn"
    assert out["usage"]["inputTokens"] == 12 and out["usage"]["outputTokens"] == 4

    resp = runtime(gw).converse_stream(modelId=NOVA, messages=user("hi"))
    events = list(resp["stream"])
    kinds = [next(iter(e)) for e in events]
    assert kinds[0] == "messageStart" and kinds[-2:] == ["messageStop", "metadata"]
    text = "".join(e["contentBlockDelta"]["delta"].get("text", "") for e in events if "contentBlockDelta" in e)
    assert text == "Hello from Nova"
    assert events[-1]["metadata"]["usage"]["outputTokens"] == 4

    [first, second] = upstreams["bedrock"].generation_requests()
    assert first["path"] == "/model/amazon.nova-pro-v1%3A0/converse"
    assert second["path"] == "/model/amazon.nova-pro-v1%3A0/converse-stream"
    # The gateway signed with its own keys; the client's signature never went upstream.
    assert first["headers"]["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={AKID}/")
    assert "AKIDCLIENT" not in json.dumps(first["headers"])
    assert "x-api-key" not in first["headers"]


def test_invoke_model_and_its_stream(gw, upstreams):
    upstreams["bedrock"].set_default({"kind": "Ok", "text": "one two three"})
    out = runtime(gw).invoke_model(modelId=CLAUDE, body=invoke_body())
    message = json.loads(out["body"].read())
    assert message["content"] == [{"type": "text", "text": "one two three"}]

    resp = runtime(gw).invoke_model_with_response_stream(modelId=CLAUDE, body=invoke_body())
    events = [json.loads(e["chunk"]["bytes"]) for e in resp["body"]]
    assert events[0]["type"] == "message_start" and events[-1]["type"] == "message_stop"
    text = "".join(e["delta"].get("text", "") for e in events if e["type"] == "content_block_delta")
    assert text == "one two three"

    sent = upstreams["bedrock"].generation_requests()
    assert [r["path"] for r in sent] == [
        "/model/us.anthropic.claude-sonnet-4-20250514-v1%3A0/invoke",
        "/model/us.anthropic.claude-sonnet-4-20250514-v1%3A0/invoke-with-response-stream",
    ]
    # The mock refuses what Bedrock refuses; the betas went through Bedrock's allowlist.
    assert sent[0]["body"]["anthropic_beta"] == ["interleaved-thinking-2025-05-14"]
    assert upstreams["anthropic"].generation_requests() == []


def test_failover_mid_chain_keeps_bedrock_framing(gw, upstreams):
    upstreams["bedrock"].set_default({"kind": "Status", "status": 429})
    upstreams["anthropic"].set_default({"kind": "Ok", "text": "anthropic took over"})

    resp = runtime(gw).invoke_model_with_response_stream(modelId=CLAUDE, body=invoke_body())
    events = [json.loads(e["chunk"]["bytes"]) for e in resp["body"]]
    text = "".join(e["delta"].get("text", "") for e in events if e["type"] == "content_block_delta")
    assert text == "anthropic took over"

    out = runtime(gw).converse(modelId="gpt-4o", messages=user("hi"))
    assert out["output"]["message"]["content"] == [{"text": "anthropic took over"}]

    [sent, _] = upstreams["anthropic"].generation_requests()
    assert sent["path"] == "/v1/messages"
    assert sent["body"]["model"] == "claude-sonnet-4-20250514"
    assert "anthropic_version" not in sent["body"] and "anthropic_beta" not in sent["body"]
    assert "interleaved-thinking-2025-05-14" in sent["headers"]["anthropic-beta"]

    # An exception before the stream's first content fails over as well.
    upstreams["bedrock"].set_default({"kind": "StreamException", "after_events": 1,
                                      "exception": "throttlingException", "message": "slow down"})
    resp = runtime(gw).converse_stream(modelId=CLAUDE, messages=user("hi"))
    text = "".join(e["contentBlockDelta"]["delta"].get("text", "") for e in resp["stream"] if "contentBlockDelta" in e)
    assert text == "anthropic took over"


def test_errors_are_the_sdks_own_exceptions(gw, upstreams):
    with pytest.raises(ClientError) as err:
        runtime(gw, key=None).converse(modelId=NOVA, messages=user("hi"))
    assert err.value.response["Error"]["Code"] == "UnrecognizedClientException"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 401

    upstreams["bedrock"].set_default({"kind": "Status", "status": 429})
    with pytest.raises(ClientError) as err:
        runtime(gw).converse(modelId=NOVA, messages=user("hi"))
    assert err.value.response["Error"]["Code"] == "ThrottlingException"

    with pytest.raises(ClientError) as err:
        runtime(gw).converse(modelId="meta.llama3-70b-instruct-v1:0", messages=user("hi"))
    assert err.value.response["Error"]["Code"] == "ResourceNotFoundException"

    # A stream that breaks after content reached the client: the SDK's stream error, no fake end.
    upstreams["bedrock"].set_default({"kind": "StreamException", "after_events": 3,
                                      "exception": "modelStreamErrorException", "message": "the model broke"})
    resp = runtime(gw).converse_stream(modelId=NOVA, messages=user("hi"))
    seen = []
    with pytest.raises(EventStreamError):
        for e in resp["stream"]:
            seen.append(next(iter(e)))
    assert "messageStop" not in seen


def test_anthropic_bedrock_client(gw, upstreams):
    import anthropic

    upstreams["bedrock"].set_default({"kind": "Ok", "text": "hello from bedrock"})
    client = anthropic.AnthropicBedrock(base_url=gw.base_url, aws_region=REGION, api_key=CLIENT_KEY, max_retries=0)
    message = client.messages.create(model=CLAUDE, max_tokens=64, messages=[{"role": "user", "content": "hi"}])
    assert message.content[0].text == "hello from bedrock"

    with client.messages.stream(model=CLAUDE, max_tokens=64, messages=[{"role": "user", "content": "hi"}]) as stream:
        text = "".join(stream.text_stream)
    assert text == "hello from bedrock"

    sent = upstreams["bedrock"].generation_requests()
    # AnthropicBedrock sends its SDK's own anthropic_version; Bedrock gets the one it expects.
    assert all(r["body"]["anthropic_version"] == "bedrock-2023-05-31" for r in sent)

    # Failover to Anthropic is invisible to the SDK.
    upstreams["bedrock"].set_default({"kind": "Status", "status": 503})
    upstreams["anthropic"].set_default({"kind": "Ok", "text": "hello from anthropic"})
    with client.messages.stream(model=CLAUDE, max_tokens=64, messages=[{"role": "user", "content": "hi"}]) as stream:
        assert "".join(stream.text_stream) == "hello from anthropic"
