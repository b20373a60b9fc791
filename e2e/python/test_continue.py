"""Continue's CLI (`cn`, npm `@continuedev/cli`) through the gateway, set up exactly as
docs/agents/continue.md says (issue #16): the page's `~/.continue/config.yaml` and its wrapper
script are taken from the page itself, only the gateway URL and the model names are replaced. A
stand-in `switchboard-token` on PATH prints the route's API key (the helper itself is tested in
e2e/tests/token_helper.rs). `cn` comes from SWITCHBOARD_CN, else .tools/continue (scripts/test
installs it there)."""

from __future__ import annotations

import os
import re
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import CLIENT_KEY, REPO

PAGE = REPO / "docs" / "agents" / "continue.md"


def cn_binary() -> Path:
    path = Path(os.environ.get("SWITCHBOARD_CN") or REPO / ".tools" / "continue" / "node_modules" / ".bin" / "cn")
    if not path.exists():
        pytest.fail(
            f"{path} not found: `npm install --prefix .tools/continue @continuedev/cli@1.5.47` "
            "(scripts/test does) or set SWITCHBOARD_CN",
            pytrace=False,
        )
    return path


def page_block(lang: str) -> str:
    blocks = re.findall(rf"```{lang}\n(.*?)```", PAGE.read_text(), flags=re.S)
    assert blocks, f"no {lang} block in {PAGE}"
    return blocks[0]


@pytest.fixture
def home(tmp_path, gateway):
    """A home folder with the page's config (gateway URL and routed model names put in), its
    wrapper in ~/bin, and a stand-in switchboard-token beside it."""
    config = yaml.safe_load(page_block("yaml"))
    for model in config["models"]:
        model["apiBase"] = model["apiBase"].replace("https://ai.example.com", gateway.base_url)
        if model["provider"] == "anthropic":
            model["model"] = "claude-test"
    (tmp_path / ".continue").mkdir()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "cn-switchboard"
    wrapper.write_text(page_block("sh"))
    token = bin_dir / "switchboard-token"
    token.write_text(f"#!/bin/sh\nprintf '%s\\n' '{CLIENT_KEY}'\n")
    for script in (wrapper, token):
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return tmp_path, config


def run_cn(home: Path, config: dict, prompt: str) -> subprocess.CompletedProcess:
    (home / ".continue" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("ANTHROPIC_", "OPENAI_", "CONTINUE_", "SWITCHBOARD_TOKEN"))
    }
    env["HOME"] = str(home)
    env["PATH"] = os.pathsep.join([str(home / "bin"), str(cn_binary().parent), env["PATH"]])
    return subprocess.run(
        [str(home / "bin" / "cn-switchboard"), "-p", prompt],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_continue_cli_answers_through_the_gateway(home, mocks, provider):
    home_dir, config = home
    # The first model of the config is the one `cn` uses: put the provider under test first.
    config["models"].sort(key=lambda m: m["provider"] != provider)
    mock = mocks["anthropic"] if provider == "anthropic" else mocks["openai_primary"]
    mock.set_default({"kind": "Ok", "text": "Hello from Continue"})

    done = run_cn(home_dir, config, "Say hello")
    assert done.returncode == 0, f"stdout: {done.stdout}\nstderr: {done.stderr}"
    assert "Hello from Continue" in done.stdout

    [request] = mock.generation_requests()
    assert request["body"]["stream"] is True
    # The token reached the gateway (the mock sees the gateway's own provider key, never it).
    assert CLIENT_KEY not in str(request["headers"])


def test_a_refused_token_ends_cn_with_the_gateways_reason(home, mocks):
    home_dir, config = home
    (home_dir / "bin" / "switchboard-token").write_text("#!/bin/sh\necho expired-token\n")
    done = run_cn(home_dir, config, "Say hello")
    assert done.returncode != 0
    # The Anthropic error body the gateway answered with its 401.
    assert "authentication_error" in done.stdout + done.stderr
    assert not [r for m in mocks.values() for r in m.generation_requests()]
