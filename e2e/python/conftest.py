"""Fixtures for the SDK end-to-end tests.

Starts mock provider upstreams (`switchboard-e2e-mocks`) and the real gateway
(`switchboard-dataplane`) on a generated standalone configuration, waits for
readiness and tears everything down. Binaries are taken from SWITCHBOARD_BIN_DIR,
else $CARGO_TARGET_DIR/debug, else <repo>/target/debug.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CLIENT_KEY_ENV = "SWITCHBOARD_E2E_CLIENT_KEY"
CLIENT_KEY = "sb-e2e-client-key"
OPENAI_KEY_ENV = "SWITCHBOARD_E2E_OPENAI_KEY"
OPENAI_KEY = "sk-upstream-openai"
ANTHROPIC_KEY_ENV = "SWITCHBOARD_E2E_ANTHROPIC_KEY"
ANTHROPIC_KEY = "sk-ant-upstream"
START_TIMEOUT = 30.0


def bin_dir() -> Path:
    if os.environ.get("SWITCHBOARD_BIN_DIR"):
        return Path(os.environ["SWITCHBOARD_BIN_DIR"])
    if os.environ.get("CARGO_TARGET_DIR"):
        return Path(os.environ["CARGO_TARGET_DIR"]) / "debug"
    return REPO / "target" / "debug"


def binary(name: str) -> Path:
    path = bin_dir() / name
    if not path.is_file():
        pytest.fail(
            f"{path} not found: build with `cargo build -p switchboard-dataplane -p switchboard-e2e` "
            "or set SWITCHBOARD_BIN_DIR",
            pytrace=False,
        )
    return path


def free_port() -> int:
    """A free port for a process the tests start, drawn below the kernel's ephemeral range
    (32768-60999) so outgoing connections cannot take it before the process binds it
    (the same rule as e2e/src/harness.rs)."""
    import random

    for _ in range(1000):
        port = random.randrange(20000, 32000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_json(method: str, url: str, body=None, timeout: float = 10.0):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read() or b"null")


class Mock:
    """One `switchboard-e2e-mocks` process, scripted through its /__mock/ control API."""

    def __init__(self, flavor: str, extra_args: list[str] | None = None):
        self.flavor = flavor
        self.proc = subprocess.Popen(
            [str(binary("switchboard-e2e-mocks")), "--flavor", flavor, *(extra_args or [])],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"mock {flavor} exited: {self.proc.stderr.read()}")
        info = json.loads(line)
        self.url: str = info["upstream"]

    def script(self, behaviours: list[dict]) -> None:
        http_json("POST", f"{self.url}/__mock/script", behaviours)

    def set_default(self, behaviour: dict) -> None:
        http_json("POST", f"{self.url}/__mock/default", behaviour)

    def requests(self) -> list[dict]:
        return http_json("GET", f"{self.url}/__mock/requests")

    def generation_requests(self) -> list[dict]:
        return [r for r in self.requests() if r["method"] == "POST"]

    def reset(self) -> None:
        http_json("POST", f"{self.url}/__mock/reset", {})

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def metric(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of metric `name` in a Prometheus text whose series carry `labels`."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        series, _, value = line.rpartition(" ")
        if series.split("{", 1)[0] == name and all(f'{k}="{v}"' in series for k, v in labels.items()):
            total += float(value)
    return total


def resource(kind: str, name: str, spec: dict) -> dict:
    return {"apiVersion": "switchboard.dev/v1alpha1", "kind": kind, "metadata": {"name": name}, "spec": spec}


def backend(name: str, provider: str, mock: Mock, key_env: str, models: list[str]) -> dict:
    return resource(
        "AIBackend",
        name,
        {
            "provider": provider,
            "endpoint": mock.url,
            "credentials": {"env": key_env},
            "models": [{"name": m, "providerModel": m} for m in models],
            "timeouts": {"connect": "2s", "firstByte": "5s", "streamIdle": "10s", "request": "30s"},
        },
    )


def build_config(mocks: dict[str, Mock]) -> list[dict]:
    """Backends and one route, API-key authenticated:
    gpt-* → openai-primary then openai-secondary; failover-* → openai-failing then openai-secondary;
    claude-* → anthropic. `gpt-4.1` is a real OpenAI model name (it has a known tokenizer)."""
    openai_models = ["gpt-test", "failover-test", "gpt-4.1"]
    return [
        backend("openai-primary", "OpenAI", mocks["openai_primary"], OPENAI_KEY_ENV, openai_models),
        backend("openai-secondary", "OpenAI", mocks["openai_secondary"], OPENAI_KEY_ENV, openai_models),
        backend("openai-failing", "OpenAI", mocks["openai_failing"], OPENAI_KEY_ENV, openai_models),
        backend("anthropic", "Anthropic", mocks["anthropic"], ANTHROPIC_KEY_ENV, ["claude-test"]),
        resource(
            "AIRoute",
            "sdk",
            {
                "pathPrefix": "/",
                "auth": {"apiKeys": [{"name": "e2e", "env": CLIENT_KEY_ENV}]},
                "rules": [
                    {
                        "models": ["gpt-*"],
                        "backends": [
                            {"name": "openai-primary", "priority": 0, "weight": 1},
                            {"name": "openai-secondary", "priority": 1, "weight": 1},
                        ],
                    },
                    {
                        "models": ["failover-*"],
                        "backends": [
                            {"name": "openai-failing", "priority": 0, "weight": 1},
                            {"name": "openai-secondary", "priority": 1, "weight": 1},
                        ],
                    },
                    {"models": ["claude-*"], "backends": [{"name": "anthropic", "priority": 0, "weight": 1}]},
                ],
                "retry": {"maxAttempts": 3, "backoff": "50ms", "retryAfterCap": "1s"},
            },
        ),
    ]


class GatewayProcess:
    def __init__(self, config_dir: Path, env: dict[str, str], extra_args: list[str] | None = None):
        self.port = free_port()
        self.admin_port = free_port()
        self.log_path = config_dir / "gateway.log"
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [
                str(binary("switchboard-dataplane")),
                "--config", str(config_dir / "config.yaml"),
                "--listen", f"127.0.0.1:{self.port}",
                "--admin-listen", f"127.0.0.1:{self.admin_port}",
                "--reload-interval", "200ms",
                *(extra_args or []),
            ],
            env={**os.environ, **env},
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.admin_url = f"http://127.0.0.1:{self.admin_port}"
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"gateway exited with {self.proc.returncode}:\n{self.log_path.read_text()}", pytrace=False)
            try:
                with urllib.request.urlopen(f"{self.admin_url}/readyz", timeout=1) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.05)
        self.stop()
        pytest.fail(f"gateway not ready within {START_TIMEOUT}s:\n{self.log_path.read_text()}", pytrace=False)

    def metrics(self) -> str:
        with urllib.request.urlopen(f"{self.admin_url}/metrics", timeout=5) as resp:
            return resp.read().decode()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@pytest.fixture(scope="session")
def mocks():
    started: dict[str, Mock] = {}
    try:
        for name, flavor in [
            ("openai_primary", "openai"),
            ("openai_secondary", "openai"),
            ("openai_failing", "openai"),
            ("anthropic", "anthropic"),
        ]:
            started[name] = Mock(flavor)
        yield started
    finally:
        for mock in started.values():
            mock.stop()


@pytest.fixture(autouse=True)
def fresh_mocks(mocks):
    """Every test starts with empty recordings, no script and the default Ok answer."""
    for mock in mocks.values():
        mock.reset()
    yield


@pytest.fixture(scope="session")
def gateway(mocks):
    config_dir = Path(tempfile.mkdtemp(prefix="switchboard-py-e2e-"))
    (config_dir / "config.yaml").write_text(yaml.safe_dump_all(build_config(mocks), sort_keys=False))
    gw = GatewayProcess(
        config_dir,
        {CLIENT_KEY_ENV: CLIENT_KEY, OPENAI_KEY_ENV: OPENAI_KEY, ANTHROPIC_KEY_ENV: ANTHROPIC_KEY},
    )
    yield gw
    gw.stop()


@pytest.fixture
def openai_client(gateway):
    import openai

    return openai.OpenAI(base_url=f"{gateway.base_url}/v1", api_key=CLIENT_KEY, max_retries=0, timeout=20)


@pytest.fixture
def anthropic_client(gateway):
    import anthropic

    return anthropic.Anthropic(base_url=gateway.base_url, api_key=CLIENT_KEY, max_retries=0, timeout=20)
