"""Proxy mode: the official SDKs and curl configured only with HTTPS_PROXY (or an httpx proxy)
and the gateway CA reach the real provider hosts' names (api.openai.com, api.anthropic.com); the
gateway intercepts them and serves them through its pipeline to mock upstreams: authenticated by
the proxy credential, limited per team, routed and counted. A host that is not on the intercept
list is tunnelled untouched to a local TLS server whose certificate the client verifies itself.
"""

from __future__ import annotations

import http.server
import shutil
import ssl
import subprocess
import tempfile
import threading
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

AGENTS_KEY_ENV = "SWITCHBOARD_E2E_PROXY_AGENTS_KEY"
AGENTS_KEY = "sb-proxy-agents-key"
TIGHT_KEY_ENV = "SWITCHBOARD_E2E_PROXY_TIGHT_KEY"
TIGHT_KEY = "sb-proxy-tight-key"
MESSAGES = [{"role": "user", "content": "Say hello"}]
TUNNEL_MARKER = "tunnelled-untouched"


def openssl(cwd: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


class TlsServer:
    """A local HTTPS server for `localhost` with its own CA (not the gateway's)."""

    def __init__(self, workdir: Path):
        if shutil.which("openssl") is None:
            pytest.fail("openssl is needed for the tunnel test certificates", pytrace=False)
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
        openssl(workdir, "req", "-x509", *ec, "-days", "2", "-subj", "/CN=tunnel test CA",
                "-keyout", "tunnel-ca.key", "-out", "tunnel-ca.crt",
                "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign")
        openssl(workdir, "req", *ec, "-subj", "/CN=localhost", "-keyout", "server.key", "-out", "server.csr")
        (workdir / "server.ext").write_text("subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n")
        openssl(workdir, "x509", "-req", "-in", "server.csr", "-CA", "tunnel-ca.crt", "-CAkey", "tunnel-ca.key",
                "-CAcreateserial", "-days", "2", "-extfile", "server.ext", "-out", "server.crt")
        self.ca = workdir / "tunnel-ca.crt"
        self.requests: list[str] = []
        requests = self.requests

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                requests.append(self.path)
                body = f"{TUNNEL_MARKER} {self.path}".encode()
                self.send_response(200)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(workdir / "server.crt", workdir / "server.key")
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class ProxyGateway:
    def __init__(self, gateway: GatewayProcess, proxy_port: int, ca: Path, tunnel: TlsServer):
        self.gateway = gateway
        self.proxy_port = proxy_port
        self.ca = ca
        self.tunnel = tunnel

    def proxy_url(self, token: str | None = AGENTS_KEY) -> str:
        userinfo = f"switchboard:{token}@" if token else ""
        return f"http://{userinfo}127.0.0.1:{self.proxy_port}"


@pytest.fixture(scope="module")
def proxied(mocks):
    work = Path(tempfile.mkdtemp(prefix="switchboard-py-proxy-"))
    created = subprocess.run([str(binary("switchboard-dataplane")), "proxy-ca", "create", "--out-dir", str(work)],
                                capture_output=True, text=True)
    assert created.returncode == 0, created.stderr
    tunnel = TlsServer(work)
    docs = [
        backend("openai-primary", "OpenAI", mocks["openai_primary"], OPENAI_KEY_ENV, ["gpt-test"]),
        backend("anthropic", "Anthropic", mocks["anthropic"], ANTHROPIC_KEY_ENV, ["claude-test"]),
        resource("AIRoute", "proxied", {
            "pathPrefix": "/",
            "auth": {"apiKeys": [{"name": "agents", "env": AGENTS_KEY_ENV}, {"name": "tight", "env": TIGHT_KEY_ENV}]},
            "rules": [
                {"models": ["gpt-*"], "backends": [{"name": "openai-primary"}]},
                {"models": ["claude-*"], "backends": [{"name": "anthropic"}]},
            ],
            "teams": {
                "refuseUnknown": True,
                "teams": [
                    {"name": "agents", "tier": "roomy", "apiKeys": ["agents"]},
                    {"name": "tight", "tier": "tight", "apiKeys": ["tight"]},
                ],
            },
            "tiers": [
                {"name": "roomy", "requestsPerMinute": 1000},
                {"name": "tight", "requestsPerMinute": 2},
            ],
        }),
    ]
    (work / "config.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False))
    proxy_port = free_port()
    gw = GatewayProcess(
        work,
        {AGENTS_KEY_ENV: AGENTS_KEY, TIGHT_KEY_ENV: TIGHT_KEY, OPENAI_KEY_ENV: OPENAI_KEY, ANTHROPIC_KEY_ENV: ANTHROPIC_KEY},
        [
            "--proxy-listen", f"127.0.0.1:{proxy_port}",
            "--proxy-ca-cert", str(work / "ca.crt"),
            "--proxy-ca-key", str(work / "ca.key"),
            "--proxy-tunnel-ports", f"443,{tunnel.port}",
        ],
    )
    yield ProxyGateway(gw, proxy_port, work / "ca.crt", tunnel)
    gw.stop()
    tunnel.stop()


def test_openai_sdk_with_only_https_proxy_and_ssl_cert_file(proxied, mocks, monkeypatch):
    """The OpenAI SDK with its default base URL, pointed at the proxy by the environment alone."""
    monkeypatch.setenv("HTTPS_PROXY", proxied.proxy_url())
    monkeypatch.setenv("SSL_CERT_FILE", str(proxied.ca))
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    mocks["openai_primary"].set_default({"kind": "OkWithUsage", "text": "hello via proxy", "input": 6, "output": 3, "cached": 0})
    client = openai.OpenAI(api_key="sk-the-tools-own-openai-key", max_retries=0, timeout=20)
    assert str(client.base_url).startswith("https://api.openai.com/")
    completion = client.chat.completions.create(model="gpt-test", messages=MESSAGES)
    assert completion.choices[0].message.content == "hello via proxy"
    stream = client.chat.completions.create(model="gpt-test", messages=MESSAGES, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "hello via proxy"
    sent = mocks["openai_primary"].generation_requests()
    assert len(sent) == 2
    for request in sent:
        assert request["path"] == "/v1/chat/completions"
        assert request["headers"]["authorization"] == f"Bearer {OPENAI_KEY}", "the gateway's key went upstream"
        assert "sk-the-tools-own-openai-key" not in str(request["headers"])
        assert AGENTS_KEY not in str(request["headers"])
    text = proxied.gateway.metrics()
    assert metric(text, "switchboard_proxy_connects_total", outcome="intercepted") >= 1
    assert metric(text, "switchboard_team_requests_total", team="agents", model="gpt-test", status="200") >= 2
    assert metric(text, "switchboard_team_tokens_total", team="agents", kind="input") >= 12


def test_anthropic_sdk_with_an_httpx_proxy_and_verify(proxied, mocks):
    mocks["anthropic"].set_default({"kind": "OkWithUsage", "text": "claude via proxy", "input": 9, "output": 2, "cached": 0})
    http_client = httpx.Client(proxy=proxied.proxy_url(), verify=ssl.create_default_context(cafile=str(proxied.ca)))
    client = anthropic.Anthropic(api_key="sk-ant-the-tools-own-key", http_client=http_client, max_retries=0, timeout=20)
    assert str(client.base_url).startswith("https://api.anthropic.com")
    with client.messages.stream(model="claude-test", max_tokens=64, messages=MESSAGES) as stream:
        assert "".join(stream.text_stream) == "claude via proxy"
    [request] = mocks["anthropic"].generation_requests()
    assert request["headers"]["x-api-key"] == ANTHROPIC_KEY
    assert "sk-ant-the-tools-own-key" not in str(request["headers"])
    models = client.models.list()
    assert "claude-test" in [m.id for m in models.data]


def test_the_request_limit_applies_to_the_proxy_callers_team(proxied, mocks):
    http_client = httpx.Client(proxy=proxied.proxy_url(TIGHT_KEY), verify=ssl.create_default_context(cafile=str(proxied.ca)))
    client = openai.OpenAI(api_key="sk-own", http_client=http_client, max_retries=0, timeout=20)
    for _ in range(2):
        client.chat.completions.create(model="gpt-test", messages=MESSAGES)
    with pytest.raises(openai.RateLimitError) as limited:
        client.chat.completions.create(model="gpt-test", messages=MESSAGES)
    assert limited.value.response.headers.get("retry-after")
    assert len(mocks["openai_primary"].generation_requests()) == 2
    text = proxied.gateway.metrics()
    assert metric(text, "switchboard_team_rejections_total", team="tight", reason="rate_limit_requests") >= 1


def test_a_gateway_token_inside_the_request_wins_over_the_proxy_credential(proxied, mocks):
    """Proxy credential `tight` (2 RPM) but the request itself carries the `agents` key: served as agents."""
    http_client = httpx.Client(proxy=proxied.proxy_url(TIGHT_KEY), verify=ssl.create_default_context(cafile=str(proxied.ca)))
    client = openai.OpenAI(api_key=AGENTS_KEY, http_client=http_client, max_retries=0, timeout=20)
    before = metric(proxied.gateway.metrics(), "switchboard_team_requests_total", team="agents")
    for _ in range(3):
        client.chat.completions.create(model="gpt-test", messages=MESSAGES)
    after = metric(proxied.gateway.metrics(), "switchboard_team_requests_total", team="agents")
    assert after - before == 3


def curl(*args: str) -> subprocess.CompletedProcess:
    # --noproxy '' : a NO_PROXY in the environment (often listing localhost) must not bypass the proxy.
    return subprocess.run(["curl", "-sS", "--noproxy", "", "--max-time", "20", *args], capture_output=True, text=True)


def test_curl_through_the_proxy(proxied):
    done = curl("--proxy", f"http://127.0.0.1:{proxied.proxy_port}", "--proxy-user", f"switchboard:{AGENTS_KEY}",
                "--cacert", str(proxied.ca), "https://api.openai.com/v1/models")
    assert done.returncode == 0, done.stderr
    assert "gpt-test" in done.stdout


def test_a_host_not_on_the_list_is_tunnelled_untouched(proxied):
    """curl verifies the local server's certificate with the server's own CA: had the gateway
    intercepted the connection (with its CA), the handshake would fail."""
    url = f"https://localhost:{proxied.tunnel.port}/hello"
    before = metric(proxied.gateway.metrics(), "switchboard_proxy_connects_total", outcome="tunnelled")
    done = curl("--proxy", proxied.proxy_url(), "--cacert", str(proxied.tunnel.ca), url)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{TUNNEL_MARKER} /hello"
    assert "/hello" in proxied.tunnel.requests
    after = metric(proxied.gateway.metrics(), "switchboard_proxy_connects_total", outcome="tunnelled")
    assert after - before == 1, "the connection went through the proxy"
    # The same host with only the gateway CA trusted fails: the certificate is the server's own.
    refused = curl("--proxy", proxied.proxy_url(), "--cacert", str(proxied.ca), url)
    assert refused.returncode != 0


def test_proxy_authentication_failures_are_407(proxied):
    for args in ([], ["--proxy-user", "switchboard:not-a-gateway-token"]):
        done = curl("--proxy", f"http://127.0.0.1:{proxied.proxy_port}", *args, "--cacert", str(proxied.ca),
                    "-o", "/dev/null", "-w", "%{http_connect}", "https://api.openai.com/v1/models")
        assert done.returncode != 0
        assert done.stdout == "407", (args, done.stdout, done.stderr)
    with pytest.raises(httpx.ProxyError):
        httpx.Client(proxy=proxied.proxy_url("wrong"), verify=ssl.create_default_context(cafile=str(proxied.ca))).get(
            "https://api.openai.com/v1/models"
        )
