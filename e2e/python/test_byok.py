"""Bring-your-own-key with the official SDKs against the real gateway binary: the caller's provider
key, set as a default header (`x-switchboard-provider-key`), is what the recording mock upstreams
receive on `Optional` and `Required` routes; `Off` strips it; a required key that is missing is a 401
and a gateway token sent as the key a 400, both in the SDK's own error type and before any upstream
call; a provider refusing the caller's key is the caller's error, without the key in it. The caller
is still identified and counted by its gateway token (team metrics), and the key is never logged.
Through proxy mode, the SDKs' own API keys are the callers' keys and Proxy-Authorization the token.
"""

from __future__ import annotations

import ssl
import subprocess
import tempfile
from pathlib import Path

import anthropic
import httpx2 as httpx
import openai
import pytest
import yaml

from conftest import (
    ANTHROPIC_KEY,
    ANTHROPIC_KEY_ENV,
    OPENAI_KEY,
    OPENAI_KEY_ENV,
    GatewayProcess,
    backend,
    binary,
    free_port,
    metric,
    resource,
)

TOKEN_ENV = "SWITCHBOARD_E2E_BYOK_TOKEN"
TOKEN = "sb-byok-gateway-token"
HEADER = "x-switchboard-provider-key"
OWN_OPENAI = "sk-callers-own-openai-key-123"
OWN_ANTHROPIC = "sk-ant-callers-own-key-456"
MESSAGES = [{"role": "user", "content": "Say hello"}]


def route(name: str, prefix: str, byok: str | None) -> dict:
    spec = {
        "pathPrefix": prefix,
        "auth": {"apiKeys": [{"name": "dev", "env": TOKEN_ENV}]},
        "teams": {"teams": [{"name": f"team-{name}", "tier": "enterprise", "apiKeys": ["dev"]}]},
        "rules": [
            {"models": ["gpt-*"], "backends": [{"name": "openai-primary"}]},
            {"models": ["claude-*"], "backends": [{"name": "anthropic"}]},
        ],
    }
    if byok is not None:
        spec["byok"] = byok
    return resource("AIRoute", name, spec)


@pytest.fixture(scope="module")
def byok_gateway(mocks):
    work = Path(tempfile.mkdtemp(prefix="switchboard-py-byok-"))
    docs = [
        backend("openai-primary", "OpenAI", mocks["openai_primary"], OPENAI_KEY_ENV, ["gpt-test"]),
        backend("anthropic", "Anthropic", mocks["anthropic"], ANTHROPIC_KEY_ENV, ["claude-test"]),
        route("off", "/off", None),
        route("optional", "/optional", "Optional"),
        route("required", "/required", "Required"),
    ]
    (work / "config.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False))
    gw = GatewayProcess(
        work,
        {TOKEN_ENV: TOKEN, OPENAI_KEY_ENV: OPENAI_KEY, ANTHROPIC_KEY_ENV: ANTHROPIC_KEY},
        ["--log-format", "json"],
    )
    yield gw
    gw.stop()


def openai_client(gw: GatewayProcess, prefix: str, key: str | None) -> openai.OpenAI:
    headers = {HEADER: key} if key else {}
    return openai.OpenAI(base_url=f"{gw.base_url}{prefix}/v1", api_key=TOKEN, default_headers=headers,
                         max_retries=0, timeout=20)


def anthropic_client(gw: GatewayProcess, prefix: str, key: str | None) -> anthropic.Anthropic:
    headers = {HEADER: key} if key else {}
    return anthropic.Anthropic(base_url=f"{gw.base_url}{prefix}", api_key=TOKEN, default_headers=headers,
                               max_retries=0, timeout=20)


def test_optional_sends_the_callers_key_in_each_providers_header(byok_gateway, mocks):
    mocks["openai_primary"].set_default({"kind": "OkWithUsage", "text": "own key", "input": 5, "output": 2, "cached": 0})
    mocks["anthropic"].set_default({"kind": "OkWithUsage", "text": "own key too", "input": 7, "output": 3, "cached": 0})
    before = byok_gateway.metrics()

    oai = openai_client(byok_gateway, "/optional", OWN_OPENAI)
    assert oai.chat.completions.create(model="gpt-test", messages=MESSAGES).choices[0].message.content == "own key"
    stream = oai.chat.completions.create(model="gpt-test", messages=MESSAGES, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "own key"
    ant = anthropic_client(byok_gateway, "/optional", OWN_ANTHROPIC)
    with ant.messages.stream(model="claude-test", max_tokens=64, messages=MESSAGES) as s:
        assert "".join(s.text_stream) == "own key too"
    # Without the header: the gateway's own key.
    assert openai_client(byok_gateway, "/optional", None).chat.completions.create(
        model="gpt-test", messages=MESSAGES).choices[0].message.content == "own key"

    sent = mocks["openai_primary"].generation_requests()
    assert [r["headers"]["authorization"] for r in sent] == [
        f"Bearer {OWN_OPENAI}", f"Bearer {OWN_OPENAI}", f"Bearer {OPENAI_KEY}"]
    [claude] = mocks["anthropic"].generation_requests()
    assert claude["headers"]["x-api-key"] == OWN_ANTHROPIC
    everything = str(sent) + str(claude)
    assert TOKEN not in everything, "the gateway token never goes upstream"
    assert HEADER not in everything
    assert ANTHROPIC_KEY not in str(claude["headers"])

    # Identified and counted by the gateway token.
    after = byok_gateway.metrics()
    requests = lambda t: metric(t, "switchboard_team_requests_total", team="team-optional", status="200")  # noqa: E731
    assert requests(after) - requests(before) == 4
    tokens = lambda t: metric(t, "switchboard_team_tokens_total", team="team-optional", kind="input")  # noqa: E731
    assert tokens(after) - tokens(before) == 5 + 5 + 7 + 5


def test_off_strips_the_header(byok_gateway, mocks):
    openai_client(byok_gateway, "/off", OWN_OPENAI).chat.completions.create(model="gpt-test", messages=MESSAGES)
    anthropic_client(byok_gateway, "/off", OWN_ANTHROPIC).messages.create(
        model="claude-test", max_tokens=64, messages=MESSAGES)
    [chat] = mocks["openai_primary"].generation_requests()
    [claude] = mocks["anthropic"].generation_requests()
    assert chat["headers"]["authorization"] == f"Bearer {OPENAI_KEY}"
    assert claude["headers"]["x-api-key"] == ANTHROPIC_KEY
    for request in (chat, claude):
        assert OWN_OPENAI not in str(request) and OWN_ANTHROPIC not in str(request)
        assert HEADER not in request["headers"]


def test_required_without_a_key_is_401_before_any_upstream_call(byok_gateway, mocks):
    with pytest.raises(openai.AuthenticationError) as e:
        openai_client(byok_gateway, "/required", None).chat.completions.create(model="gpt-test", messages=MESSAGES)
    assert HEADER in str(e.value)
    with pytest.raises(anthropic.AuthenticationError) as e:
        anthropic_client(byok_gateway, "/required", None).messages.create(
            model="claude-test", max_tokens=64, messages=MESSAGES)
    assert e.value.body["error"]["type"] == "authentication_error"
    assert mocks["openai_primary"].generation_requests() == []
    assert mocks["anthropic"].generation_requests() == []
    # With a key it is served, with that key.
    anthropic_client(byok_gateway, "/required", OWN_ANTHROPIC).messages.create(
        model="claude-test", max_tokens=64, messages=MESSAGES)
    [claude] = mocks["anthropic"].generation_requests()
    assert claude["headers"]["x-api-key"] == OWN_ANTHROPIC


def test_the_gateway_token_as_the_key_is_400_and_never_goes_upstream(byok_gateway, mocks):
    for prefix in ("/optional", "/required"):
        with pytest.raises(openai.BadRequestError) as e:
            openai_client(byok_gateway, prefix, TOKEN).chat.completions.create(model="gpt-test", messages=MESSAGES)
        assert TOKEN not in str(e.value)
        with pytest.raises(anthropic.BadRequestError) as e:
            anthropic_client(byok_gateway, prefix, TOKEN).messages.create(
                model="claude-test", max_tokens=64, messages=MESSAGES)
        assert e.value.body["error"]["type"] == "invalid_request_error"
    assert mocks["openai_primary"].generation_requests() == []
    assert mocks["anthropic"].generation_requests() == []


def test_a_key_the_provider_refuses_is_the_callers_401_without_the_key(byok_gateway, mocks):
    mocks["openai_primary"].set_default({"kind": "Status", "status": 401, "body": {"error": {
        "message": f"Incorrect API key provided: {OWN_OPENAI}.", "type": "invalid_request_error",
        "code": "invalid_api_key"}}})
    with pytest.raises(openai.AuthenticationError) as e:
        openai_client(byok_gateway, "/required", OWN_OPENAI).chat.completions.create(model="gpt-test", messages=MESSAGES)
    assert OWN_OPENAI not in str(e.value.body)
    assert "[redacted]" in e.value.body["message"]
    assert len(mocks["openai_primary"].generation_requests()) == 1, "not retried"


def test_the_key_is_never_logged(byok_gateway):
    # Runs after the others in this module: every request above is in the log.
    log = byok_gateway.log_path.read_text()
    assert '"byok":true' in log
    for secret in (OWN_OPENAI, OWN_ANTHROPIC):
        assert secret not in log


@pytest.fixture(scope="module")
def byok_proxy(mocks):
    work = Path(tempfile.mkdtemp(prefix="switchboard-py-byok-proxy-"))
    created = subprocess.run([str(binary("switchboard-dataplane")), "proxy-ca", "create", "--out-dir", str(work)],
                             capture_output=True, text=True)
    assert created.returncode == 0, created.stderr
    docs = [
        backend("openai-primary", "OpenAI", mocks["openai_primary"], OPENAI_KEY_ENV, ["gpt-test"]),
        backend("anthropic", "Anthropic", mocks["anthropic"], ANTHROPIC_KEY_ENV, ["claude-test"]),
        route("proxied", "/", "Optional"),
    ]
    (work / "config.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False))
    port = free_port()
    gw = GatewayProcess(
        work,
        {TOKEN_ENV: TOKEN, OPENAI_KEY_ENV: OPENAI_KEY, ANTHROPIC_KEY_ENV: ANTHROPIC_KEY},
        ["--proxy-listen", f"127.0.0.1:{port}", "--proxy-ca-cert", str(work / "ca.crt"),
         "--proxy-ca-key", str(work / "ca.key")],
    )
    yield gw, port, work / "ca.crt"
    gw.stop()


def test_through_the_proxy_the_sdks_own_keys_are_the_callers_keys(byok_proxy, mocks):
    gw, port, ca = byok_proxy
    http_client = lambda: httpx.Client(  # noqa: E731
        proxy=f"http://switchboard:{TOKEN}@127.0.0.1:{port}", verify=ssl.create_default_context(cafile=str(ca)))
    before = gw.metrics()
    oai = openai.OpenAI(api_key=OWN_OPENAI, http_client=http_client(), max_retries=0, timeout=20)
    assert str(oai.base_url).startswith("https://api.openai.com/")
    oai.chat.completions.create(model="gpt-test", messages=MESSAGES)
    ant = anthropic.Anthropic(api_key=OWN_ANTHROPIC, http_client=http_client(), max_retries=0, timeout=20)
    ant.messages.create(model="claude-test", max_tokens=64, messages=MESSAGES)
    [chat] = mocks["openai_primary"].generation_requests()
    [claude] = mocks["anthropic"].generation_requests()
    assert chat["headers"]["authorization"] == f"Bearer {OWN_OPENAI}"
    assert claude["headers"]["x-api-key"] == OWN_ANTHROPIC
    for request in (chat, claude):
        assert TOKEN not in str(request["headers"]), "the proxy token never goes upstream"
        assert OPENAI_KEY not in str(request["headers"]) and ANTHROPIC_KEY not in str(request["headers"])
    requests = lambda t: metric(t, "switchboard_team_requests_total", team="team-proxied", status="200")  # noqa: E731
    assert requests(gw.metrics()) - requests(before) == 2, "counted for the proxy token's team"
