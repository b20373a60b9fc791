"""Refusals designed for agents, seen by the official SDKs: a team whose token quota is used up
until midnight gets a 429 the SDKs do not retry (`x-should-retry: false` beside a `Retry-After`
of hours; the Stainless SDKs cap `Retry-After` at 60 s and would otherwise retry), with the
message naming the limit, its size and its reset, and each dialect's rate-limit headers."""

from __future__ import annotations

import re
import tempfile
import time
from pathlib import Path

import anthropic
import openai
import pytest
import yaml

from conftest import (
    ANTHROPIC_KEY,
    ANTHROPIC_KEY_ENV,
    CLIENT_KEY,
    CLIENT_KEY_ENV,
    GatewayProcess,
    backend,
    metric,
    resource,
)

MESSAGES = [{"role": "user", "content": "Say hello"}]
RETRIES = 3


@pytest.fixture
def quota_gateway(mocks):
    """Team `quota` (the SDK's key) may use 1 token a day."""
    config_dir = Path(tempfile.mkdtemp(prefix="switchboard-py-refusals-"))
    config = [
        backend("anthropic", "Anthropic", mocks["anthropic"], ANTHROPIC_KEY_ENV, ["claude-test"]),
        resource(
            "AIRoute",
            "quota",
            {
                "pathPrefix": "/",
                "auth": {"apiKeys": [{"name": "e2e", "env": CLIENT_KEY_ENV}]},
                "rules": [{"models": ["claude-*"], "backends": [{"name": "anthropic"}]}],
                "teams": {"teams": [{"name": "quota", "tier": "standard", "tokensPerDay": 1, "apiKeys": ["e2e"]}]},
            },
        ),
    ]
    (config_dir / "config.yaml").write_text(yaml.safe_dump_all(config, sort_keys=False))
    gw = GatewayProcess(config_dir, {CLIENT_KEY_ENV: CLIENT_KEY, ANTHROPIC_KEY_ENV: ANTHROPIC_KEY})
    yield gw
    gw.stop()


def use_up_the_quota(gw: GatewayProcess, mocks) -> None:
    mocks["anthropic"].set_default({"kind": "OkWithUsage", "text": "hi", "input": 5, "output": 2, "cached": 0})
    client = anthropic.Anthropic(base_url=gw.base_url, api_key=CLIENT_KEY, max_retries=0, timeout=20)
    client.messages.create(model="claude-test", max_tokens=16, messages=MESSAGES)
    deadline = time.monotonic() + 10
    while metric(gw.metrics(), "switchboard_team_remaining_tokens", team="quota") != 0:
        assert time.monotonic() < deadline, "the answer's tokens were never charged"
        time.sleep(0.05)


def refusals(gw: GatewayProcess) -> float:
    return metric(gw.metrics(), "switchboard_team_rejections_total", team="quota", reason="rate_limit_tokens")


def assert_names_the_quota(message: str) -> None:
    assert re.search(
        r"team quota: token quota of 1 token per day exhausted \(7 used\); "
        r"resets at \d{4}-\d\d-\d\dT00:00:00Z \(in \d+[hm]",
        message,
    ), message


def test_the_anthropic_sdk_stops_at_once_on_an_exhausted_quota(quota_gateway, mocks):
    use_up_the_quota(quota_gateway, mocks)
    client = anthropic.Anthropic(base_url=quota_gateway.base_url, api_key=CLIENT_KEY, max_retries=RETRIES, timeout=20)
    with pytest.raises(anthropic.RateLimitError) as refused:
        client.messages.create(model="claude-test", max_tokens=16, messages=MESSAGES)
    headers = refused.value.response.headers
    assert int(headers["retry-after"]) > 60
    assert headers["x-should-retry"] == "false"
    assert headers["anthropic-ratelimit-tokens-limit"] == "1"
    assert headers["anthropic-ratelimit-tokens-remaining"] == "0"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT00:00:00Z", headers["anthropic-ratelimit-tokens-reset"])
    assert refused.value.body["error"]["type"] == "rate_limit_error"
    assert_names_the_quota(refused.value.body["error"]["message"])
    # One attempt, not 1 + RETRIES.
    assert refusals(quota_gateway) == 1


def test_the_openai_sdk_stops_at_once_on_an_exhausted_quota(quota_gateway, mocks):
    use_up_the_quota(quota_gateway, mocks)
    client = openai.OpenAI(base_url=f"{quota_gateway.base_url}/v1", api_key=CLIENT_KEY, max_retries=RETRIES, timeout=20)
    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.create(model="claude-test", messages=MESSAGES)
    headers = refused.value.response.headers
    assert int(headers["retry-after"]) > 60
    assert headers["x-should-retry"] == "false"
    assert headers["x-ratelimit-limit-tokens"] == "1"
    assert headers["x-ratelimit-remaining-tokens"] == "0"
    assert "anthropic-ratelimit-tokens-limit" not in headers
    assert refused.value.code == "rate_limit_exceeded"
    assert_names_the_quota(refused.value.body["message"])
    assert refusals(quota_gateway) == 1
