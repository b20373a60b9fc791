"""The Bedrock-flavoured mock upstream against the real AWS SDK (boto3 `bedrock-runtime`), with
no gateway in between: botocore signs every request with SigV4 and the mock verifies the
signature with the same secret, botocore parses the mock's JSON and binary event-stream
answers, and the mock's errors and mid-stream exceptions surface as the SDK's own exceptions.
This is what makes the mock a faithful stand-in for Bedrock in the gateway's tests."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, EventStreamError

from conftest import Mock

REGION = "us-east-1"
AKID = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
CLAUDE = "us.anthropic.claude-sonnet-4-20250514-v1:0"
NOVA = "amazon.nova-pro-v1:0"


@pytest.fixture(scope="module")
def bedrock_mock():
    mock = Mock("bedrock", ["--aws-region", REGION, "--aws-secret", SECRET])
    yield mock
    mock.stop()


@pytest.fixture
def mock(bedrock_mock):
    bedrock_mock.reset()
    return bedrock_mock


def client(mock: Mock, secret: str = SECRET):
    return boto3.client(
        "bedrock-runtime",
        endpoint_url=mock.url,
        region_name=REGION,
        aws_access_key_id=AKID,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


def test_converse_is_signed_and_answered(mock):
    mock.set_default({"kind": "OkWithUsage", "text": "Hello from Bedrock", "input": 12, "output": 4, "cached": 0})
    out = client(mock).converse(modelId=NOVA, messages=[{"role": "user", "content": [{"text": "hi"}]}])
    assert out["output"]["message"]["content"] == [{"text": "Hello from Bedrock"}]
    assert out["stopReason"] == "end_turn"
    assert out["usage"] == {"inputTokens": 12, "outputTokens": 4, "totalTokens": 16}
    [req] = mock.generation_requests()
    assert req["path"] == "/model/amazon.nova-pro-v1%3A0/converse"
    assert req["headers"]["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={AKID}/")


def test_converse_stream_events(mock):
    mock.set_default({"kind": "ToolCall", "name": "get_weather", "arguments": {"city": "Paris"}})
    resp = client(mock).converse_stream(modelId=NOVA, messages=[{"role": "user", "content": [{"text": "weather?"}]}])
    events = list(resp["stream"])
    kinds = [next(iter(e)) for e in events]
    assert kinds[0] == "messageStart" and kinds[-2:] == ["messageStop", "metadata"]
    start = next(e["contentBlockStart"] for e in events if "contentBlockStart" in e)
    assert start["start"]["toolUse"]["name"] == "get_weather"
    args = "".join(e["contentBlockDelta"]["delta"]["toolUse"]["input"] for e in events if "contentBlockDelta" in e)
    assert json.loads(args) == {"city": "Paris"}
    assert next(e for e in events if "messageStop" in e)["messageStop"]["stopReason"] == "tool_use"
    assert "usage" in events[-1]["metadata"]


def test_invoke_model_and_its_stream(mock):
    body = json.dumps({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 64,
                       "messages": [{"role": "user", "content": "hi"}]})
    mock.set_default({"kind": "Ok", "text": "one two three"})
    out = client(mock).invoke_model(modelId=CLAUDE, body=body)
    message = json.loads(out["body"].read())
    assert message["content"] == [{"type": "text", "text": "one two three"}]
    assert out["ResponseMetadata"]["HTTPHeaders"]["x-amzn-bedrock-output-token-count"] == "3"

    resp = client(mock).invoke_model_with_response_stream(modelId=CLAUDE, body=body)
    events = [json.loads(e["chunk"]["bytes"]) for e in resp["body"]]
    assert [e["type"] for e in events][0] == "message_start"
    assert events[-1]["type"] == "message_stop"
    assert "amazon-bedrock-invocationMetrics" in events[-1]
    text = "".join(e["delta"].get("text", "") for e in events if e["type"] == "content_block_delta")
    assert text == "one two three"
    paths = [r["path"] for r in mock.generation_requests()]
    assert paths == [
        "/model/us.anthropic.claude-sonnet-4-20250514-v1%3A0/invoke",
        "/model/us.anthropic.claude-sonnet-4-20250514-v1%3A0/invoke-with-response-stream",
    ]


def test_mid_stream_exception_is_an_sdk_error(mock):
    mock.set_default({"kind": "StreamException", "after_events": 2, "exception": "throttlingException",
                      "message": "Too many requests, please wait before trying again."})
    resp = client(mock).converse_stream(modelId=NOVA, messages=[{"role": "user", "content": [{"text": "hi"}]}])
    seen = []
    with pytest.raises(EventStreamError) as err:
        for e in resp["stream"]:
            seen.append(next(iter(e)))
    assert err.value.response["Error"]["Code"] == "throttlingException"
    assert seen == ["messageStart", "contentBlockDelta"]


def test_errors_and_refusals_are_bedrock_shaped(mock):
    mock.set_default({"kind": "Status", "status": 429})
    with pytest.raises(ClientError) as err:
        client(mock).converse(modelId=NOVA, messages=[{"role": "user", "content": [{"text": "hi"}]}])
    assert err.value.response["Error"]["Code"] == "ThrottlingException"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429

    mock.set_default({"kind": "Ok", "text": "unused"})
    with pytest.raises(ClientError) as err:
        client(mock, secret="wrong-secret").converse(modelId=NOVA, messages=[{"role": "user", "content": [{"text": "hi"}]}])
    assert err.value.response["Error"]["Code"] == "InvalidSignatureException"

    bad = json.dumps({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 8, "model": "claude",
                      "messages": [{"role": "user", "content": "hi"}]})
    with pytest.raises(ClientError) as err:
        client(mock).invoke_model(modelId=CLAUDE, body=bad)
    assert err.value.response["Error"]["Code"] == "ValidationException"
    assert "extraneous key [model]" in err.value.response["Error"]["Message"]
