"""interlace.yaml: validation errors name the file, the line and what to write instead."""

from __future__ import annotations

from pathlib import Path

import pytest

from interlace.config import ConfigErrors, load_config, parse_config
from interlace.core.errors import ConfigError

GOOD = """\
server:
  port: 9000
auth:
  master_key: ${MASTER}
models:
  gpt:
    deployments:
      - provider: openai
        model: gpt-4o-mini
        base_url: http://127.0.0.1:9999/v1
        api_key: ${OPENAI_KEY}
        weight: 3
        tags: {region: eu}
        timeouts: {connect: 1, first_byte: 2, idle: 3, total: 4}
      - provider: anthropic
        model: claude-x
        api_key: ${ANTHROPIC_KEY}
"""

ENV = {"MASTER": "m-secret", "OPENAI_KEY": "sk-test", "ANTHROPIC_KEY": "ak-test"}


def test_valid_config_resolves_secrets_from_the_environment() -> None:
    config = parse_config(GOOD, filename="interlace.yaml", environ=ENV)
    deployments = config.models["gpt"].deployments
    assert deployments[0].api_key is not None
    assert deployments[0].api_key.get_secret_value() == "sk-test"
    assert deployments[0].timeouts.first_byte == 2
    assert deployments[0].tags == {"region": "eu"}
    assert deployments[1].provider == "anthropic"
    assert config.auth.master_key is not None
    assert "m-secret" not in repr(config)


def test_unknown_key_names_file_line_and_suggestion() -> None:
    text = GOOD.replace("        weight: 3\n", "        wieght: 3\n")
    with pytest.raises(ConfigError) as info:
        parse_config(text, filename="interlace.yaml", environ=ENV)
    message = str(info.value)
    assert "interlace.yaml:12" in message
    assert "wieght" in message
    assert "did you mean 'weight'" in message


def test_plain_text_secret_is_refused_with_the_fix() -> None:
    text = GOOD.replace("api_key: ${OPENAI_KEY}", "api_key: sk-live-123")
    with pytest.raises(ConfigError) as info:
        parse_config(text, filename="x.yaml", environ=ENV)
    message = str(info.value)
    assert "x.yaml:11" in message
    assert "plain-text secret" in message
    assert "${OPENAI_API_KEY}" in message
    assert "sk-live-123" not in message


def test_missing_environment_variable_is_named() -> None:
    env = {k: v for k, v in ENV.items() if k != "ANTHROPIC_KEY"}
    with pytest.raises(ConfigError) as info:
        parse_config(GOOD, filename="interlace.yaml", environ=env)
    assert "interlace.yaml:17" in str(info.value)
    assert "ANTHROPIC_KEY is not set" in str(info.value)


def test_wrong_type_points_at_the_line() -> None:
    text = GOOD.replace("port: 9000", "port: ninety")
    with pytest.raises(ConfigError) as info:
        parse_config(text, filename="interlace.yaml", environ=ENV)
    assert "interlace.yaml:2" in str(info.value)
    assert "server.port" in str(info.value)


def test_unknown_provider_lists_the_choices() -> None:
    text = GOOD.replace("provider: anthropic", "provider: antropic")
    with pytest.raises(ConfigError) as info:
        parse_config(text, filename="interlace.yaml", environ=ENV)
    assert "interlace.yaml:15" in str(info.value)
    assert "'anthropic'" in str(info.value)


def test_several_errors_are_all_reported() -> None:
    text = GOOD.replace("port: 9000", "port: -1").replace("weight: 3", "weight: 0")
    with pytest.raises(ConfigErrors) as info:
        parse_config(text, filename="c.yaml", environ=ENV)
    assert len(info.value.errors) == 2
    lines = sorted(e.line or 0 for e in info.value.errors)
    assert lines == [2, 12]


def test_yaml_syntax_error_has_a_line() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config("models:\n  gpt: [unclosed\n", filename="bad.yaml", environ={})
    assert "bad.yaml:" in str(info.value)
    assert "YAML syntax error" in str(info.value)


def test_deployment_needs_at_least_one_entry() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config("models:\n  gpt:\n    deployments: []\n", filename="c.yaml", environ={})
    assert "c.yaml:3" in str(info.value)


def test_azure_needs_api_version() -> None:
    text = (
        "models:\n  az:\n    deployments:\n"
        "      - provider: openai\n        model: d\n        api_style: azure\n"
    )
    with pytest.raises(ConfigError) as info:
        parse_config(text, filename="c.yaml", environ={})
    assert "api_version" in str(info.value)
    assert "c.yaml:4" in str(info.value)


def test_missing_file_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.yaml")
    assert "nope.yaml" in str(info.value)
    assert "--config" in str(info.value)


def test_empty_file_is_a_valid_empty_config(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("")
    assert load_config(path).models == {}
