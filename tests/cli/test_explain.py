"""``interlace route explain``: rules, the resolved alias and its deployments, policies and chains."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from interlace.cli.main import app

ENV = {"COLUMNS": "300", "KEY": "sk-secret"}

CONFIG = """
state:
  dir: {state}
routing:
  rules:
    - name: beta-testers
      match: {{model: chat, headers: {{x-beta: "yes"}}}}
      model: chat-next
      require_tags: {{tier: gold}}
    - name: canary
      match: {{model: chat}}
      split: [{{model: chat, weight: 50}}, {{model: chat-next, weight: 50}}]
models:
  chat:
    description: the production chat model
    strategy: cost
    retry: {{max_attempts: 2, base_delay: 0.5}}
    breaker: {{failure_rate: 0.25, min_requests: 10, open_for: 20}}
    fallbacks: [backup]
    context_fallbacks: [long]
    shadow: {{model: chat-next, sample: 0.1}}
    deployments:
      - provider: openai
        model: gpt-4o-mini
        base_url: http://127.0.0.1:9/v1
        api_key: ${{KEY}}
        tags: {{region: us}}
        price: {{input: 0.15, output: 0.6}}
      - provider: anthropic
        model: claude-3-5-haiku
        base_url: http://127.0.0.1:9
        api_key: ${{KEY}}
        tags: {{region: eu}}
        price: {{input: 0.8, output: 4}}
        timeouts: {{total: 120}}
  chat-next:
    deployments:
      - provider: openai
        model: gpt-next
        base_url: http://127.0.0.1:9/v1
        tags: {{tier: gold}}
  backup:
    deployments: [{{provider: fake, model: echo}}]
  long:
    deployments: [{{provider: fake, model: echo}}]
"""


def write(tmp_path: Path) -> Path:
    path = tmp_path / "interlace.yaml"
    path.write_text(CONFIG.format(state=tmp_path / "state"))
    return path


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["route", "explain", *args], env=ENV)
    return result.exit_code, result.output


def test_explains_rules_deployments_policies_and_chains(tmp_path: Path) -> None:
    code, out = run(
        "--config", str(write(tmp_path)), "--model", "chat", "--user", "alice", "--tags", "region=eu"
    )
    assert code == 0, out
    assert "requested model: chat" in out
    assert "rule 'beta-testers': does not match, header x-beta is absent" in out
    assert "rule 'canary': matches (model=chat)" in out
    assert "sticky on user='alice'" in out
    served = re.search(r"serving (\S+) \(rule 'canary', arm \d\)", out)
    assert served is not None
    assert f"resolved alias: {served.group(1)}" in out  # the alias the rule picked is the one explained
    assert not (tmp_path / "state").exists()  # no database opened
    assert "sk-secret" not in out


def test_deployments_in_cost_order_with_tag_match_and_prefill(tmp_path: Path) -> None:
    code, out = run("-c", str(write(tmp_path)), "-m", "backup")
    assert code == 0, out
    assert "resolved alias: backup" in out
    for user in (f"u-{i:02}" for i in range(20)):  # a user the sticky canary keeps on chat itself
        code, out = run("-c", str(write(tmp_path)), "-m", "chat", "--user", user, "--tags", "region=eu")
        if "resolved alias: chat —" in out:
            break
    assert "resolved alias: chat — the production chat model" in out, out
    assert "strategy: cost: cheapest first by price" in out
    assert "required tags: region=eu" in out
    rows = [line for line in out.splitlines() if "chat/0" in line or "chat/1" in line]
    assert len(rows) == 2
    assert "chat/0" in rows[0]  # cheaper first
    assert "gpt-4o-mini" in rows[0]
    assert "NO — skipped" in rows[0]  # region=us
    assert "$0.15 / $0.6" in rows[0]
    assert "anthropic" in rows[1]
    assert "claude-3-5-haiku" in rows[1]
    assert "total 120s" in rows[1]
    assert re.search(r"│ yes\s+│ yes\s+│", rows[1])  # has the tags; anthropic continues cut streams
    assert "retry: up to 2 attempts" in out
    assert "breaker: opens at 25% failures of at least 10 calls in 30s, stays open 20s" in out
    assert "fallbacks: backup (1 deployment(s))" in out
    assert "context fallbacks: long (1 deployment(s))" in out
    assert "content-policy fallbacks: none (a content-policy refusal is returned)" in out
    assert "shadow: mirrors 10% of answered chat requests to chat-next" in out


def test_header_rule_adds_its_required_tags(tmp_path: Path) -> None:
    code, out = run("-c", str(write(tmp_path)), "-m", "chat", "-H", "X-Beta=yes")
    assert code == 0, out
    assert "rule 'beta-testers': matches" in out
    assert "rule 'canary': not considered" in out
    assert "resolved alias: chat-next" in out
    assert "required tags: tier=gold" in out
    assert "shadow: none" in out


def test_random_split_explains_the_arm_it_resolves(tmp_path: Path) -> None:
    config = str(write(tmp_path))
    for _ in range(6):  # no sticky value: the arm is drawn, and the explanation names the drawn one
        code, out = run("-c", config, "-m", "chat")
        assert code == 0, out
        assert "no sticky value" in out
        served = re.search(r"serving (\S+) \(rule 'canary', arm \d\)", out)
        assert served is not None
        assert f"resolved alias: {served.group(1)}" in out


def test_unknown_model_and_bad_header(tmp_path: Path) -> None:
    code, out = run("-c", str(write(tmp_path)), "-m", "nope")
    assert code == 1
    assert "The model 'nope' does not exist" in out
    code, out = run("-c", str(write(tmp_path)), "-m", "chat", "-H", "novalue")
    assert code == 1
    assert "--header takes NAME=VALUE" in out
    code, out = run("-c", str(write(tmp_path)), "-m", "chat", "--tags", "region")
    assert code == 1
    assert "--tags" in out
