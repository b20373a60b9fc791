"""Azure OpenAI as the gateway's upstream, end to end: the real gateway with `provider: AzureOpenAI`
backends (deployment URLs and the v1 API) in front of the Azure-flavoured mock, driven by the
`openai` and `anthropic` SDKs. The mock checks what Azure checks (a credential in `api-key`,
`api-version` on deployment paths) and answers with Azure's content-filter annotations; the tests
check that the gateway reaches it exactly as the `openai` SDK's `AzureOpenAI` client would (same
path, `api-version`, `api-key` and body `model`), that Azure's annotation chunks never reach the
client, that a content-filter refusal is returned without failover and that 429/503 fail over."""

from __future__ import annotations

import tempfile
from pathlib import Path

import anthropic
import openai
import pytest
import yaml

from conftest import CLIENT_KEY, CLIENT_KEY_ENV, OPENAI_KEY, OPENAI_KEY_ENV, GatewayProcess, Mock, resource

AZURE_KEY_ENV = "SWITCHBOARD_E2E_AZURE_KEY"
AZURE_KEY = "azure-upstream-key"
DEPLOYMENT = "prod-gpt4o"
TIMEOUTS = {"connect": "2s", "firstByte": "5s", "streamIdle": "10s", "request": "30s"}


@pytest.fixture(scope="module")
def upstreams():
    started = {"azure": Mock("azure"), "openai": Mock("openai")}
    yield started
    for mock in started.values():
        mock.stop()


@pytest.fixture(autouse=True)
def fresh(upstreams):
    for mock in upstreams.values():
        mock.reset()
    upstreams["azure"].set_default({"kind": "Ok", "text": "Hello from Azure"})
    upstreams["openai"].set_default({"kind": "Ok", "text": "Hello from OpenAI"})
    yield


def azure_backend(name: str, mock: Mock, model: str, azure: dict | None) -> dict:
    spec = {
        "provider": "AzureOpenAI",
        "endpoint": mock.url,
        "credentials": {"env": AZURE_KEY_ENV},
        "models": [{"name": model, "providerModel": DEPLOYMENT}],
        "timeouts": TIMEOUTS,
    }
    if azure is not None:
        spec["azure"] = azure
    return resource("AIBackend", name, spec)


@pytest.fixture(scope="module")
def gw(upstreams):
    """`gpt-4o` → Azure deployment URLs, then OpenAI; `gpt-4o-v1` → Azure's v1 API. Both are the
    deployment `prod-gpt4o`."""
    config = [
        azure_backend("azure-deployments", upstreams["azure"], "gpt-4o", {"api": "Deployments"}),
        azure_backend("azure-v1", upstreams["azure"], "gpt-4o-v1", None),
        resource("AIBackend", "openai", {
            "provider": "OpenAI",
            "endpoint": upstreams["openai"].url,
            "credentials": {"env": OPENAI_KEY_ENV},
            "models": [{"name": "gpt-4o"}],
            "timeouts": TIMEOUTS,
        }),
        resource("AIRoute", "azure", {
            "pathPrefix": "/",
            "auth": {"apiKeys": [{"name": "e2e", "env": CLIENT_KEY_ENV}]},
            "rules": [
                {"models": ["gpt-4o"], "backends": [{"name": "azure-deployments", "priority": 0},
                                                     {"name": "openai", "priority": 1}]},
                {"models": ["gpt-4o-v1"], "backends": [{"name": "azure-v1"}]},
            ],
            "retry": {"backoff": "50ms"},
        }),
    ]
    config_dir = Path(tempfile.mkdtemp(prefix="switchboard-py-azure-"))
    (config_dir / "config.yaml").write_text(yaml.safe_dump_all(config, sort_keys=False))
    process = GatewayProcess(config_dir, {CLIENT_KEY_ENV: CLIENT_KEY, AZURE_KEY_ENV: AZURE_KEY, OPENAI_KEY_ENV: OPENAI_KEY})
    yield process
    process.stop()


def openai_client(gw: GatewayProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gw.base_url}/v1", api_key=CLIENT_KEY, max_retries=0)


def user(text: str = "hi") -> list[dict]:
    return [{"role": "user", "content": text}]


def shape(request: dict) -> tuple:
    """What Azure sees of a request: path, query, credential, deployment in the body."""
    return (request["path"], request["query"], request["headers"].get("api-key"), request["body"].get("model"))


def test_the_gateway_reaches_azure_as_the_azure_openai_client_does(gw, upstreams):
    azure = upstreams["azure"]
    direct = openai.AzureOpenAI(api_key=AZURE_KEY, api_version="2024-10-21", azure_endpoint=azure.url, max_retries=0)
    direct.chat.completions.create(model=DEPLOYMENT, messages=user())
    out = openai_client(gw).chat.completions.create(model="gpt-4o", messages=user())
    assert out.choices[0].message.content == "Hello from Azure"
    [sdk, gateway] = azure.generation_requests()
    assert shape(gateway) == shape(sdk) == (
        f"/openai/deployments/{DEPLOYMENT}/chat/completions", "api-version=2024-10-21", AZURE_KEY, DEPLOYMENT)
    assert "authorization" not in gateway["headers"], "the client's token stays at the gateway"
    assert CLIENT_KEY not in str(gateway["headers"])

    # The v1 API: as `OpenAI(base_url=…/openai/v1/)` calls it.
    v1 = openai.OpenAI(base_url=f"{azure.url}/openai/v1/", api_key="unused", default_headers={"api-key": AZURE_KEY}, max_retries=0)
    v1.chat.completions.create(model=DEPLOYMENT, messages=user())
    openai_client(gw).chat.completions.create(model="gpt-4o-v1", messages=user())
    [sdk, gateway] = azure.generation_requests()[2:]
    assert shape(gateway) == shape(sdk) == ("/openai/v1/chat/completions", None, AZURE_KEY, DEPLOYMENT)


def test_streams_lose_azures_annotation_chunks(gw, upstreams):
    chunks = list(openai_client(gw).chat.completions.create(model="gpt-4o", messages=user(), stream=True))
    assert all(c.choices for c in chunks), "no choices-less chunk (prompt filter results, usage) reaches the client"
    assert all(c.choices[0].delta is not None for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Hello from Azure"
    assert chunks[-1].choices[0].finish_reason == "stop"
    [req] = upstreams["azure"].generation_requests()
    assert req["body"]["stream_options"] == {"include_usage": True}, "the gateway asks for usage"
    assert 'provider="azure_openai"' in gw.metrics()


def test_anthropic_clients_are_translated_to_azure(gw, upstreams):
    client = anthropic.Anthropic(base_url=gw.base_url, api_key=CLIENT_KEY, max_retries=0)
    msg = client.messages.create(model="gpt-4o", max_tokens=64, messages=user())
    assert msg.content[0].text == "Hello from Azure"
    assert msg.usage.input_tokens > 0
    with client.messages.stream(model="gpt-4o", max_tokens=64, messages=user()) as s:
        assert "".join(s.text_stream) == "Hello from Azure"
    for req in upstreams["azure"].generation_requests():
        assert (req["path"], req["query"], req["headers"]["api-key"]) == (
            f"/openai/deployments/{DEPLOYMENT}/chat/completions", "api-version=2024-10-21", AZURE_KEY)
        assert req["body"]["max_completion_tokens"] == 64


def test_responses_pass_through_to_the_v1_api(gw, upstreams):
    out = openai_client(gw).responses.create(model="gpt-4o-v1", input="hi")
    assert out.output_text == "Hello from Azure"
    [req] = upstreams["azure"].generation_requests()
    assert (req["path"], req["query"], req["headers"]["api-key"]) == ("/openai/v1/responses", None, AZURE_KEY)
    assert req["body"]["model"] == DEPLOYMENT and req["body"]["input"] == "hi"


def test_a_content_filter_refusal_is_returned_without_failover(gw, upstreams):
    upstreams["azure"].set_default({"kind": "Status", "status": 400, "body": {"error": {
        "message": "The response was filtered due to the prompt triggering Azure OpenAI's content management policy.",
        "type": None, "param": "prompt", "code": "content_filter", "status": 400,
        "innererror": {"code": "ResponsibleAIPolicyViolation", "content_filter_result": {"hate": {"filtered": True, "severity": "high"}}}}}})
    with pytest.raises(openai.BadRequestError) as err:
        openai_client(gw).chat.completions.create(model="gpt-4o", messages=user("bad"))
    assert err.value.code == "content_filter"
    assert len(upstreams["azure"].generation_requests()) == 1
    assert upstreams["openai"].generation_requests() == [], "never failed over"


@pytest.mark.parametrize("status", [429, 503])
def test_throttling_and_unavailability_fail_over_to_openai(gw, upstreams, status):
    upstreams["azure"].set_default({"kind": "Status", "status": status})
    out = openai_client(gw).chat.completions.create(model="gpt-4o", messages=user())
    assert out.choices[0].message.content == "Hello from OpenAI"
    assert len(upstreams["azure"].generation_requests()) >= 1
    assert len(upstreams["openai"].generation_requests()) == 1
