"""``audit:``: defaults, the content modes, and the HMAC key as a ${ENV} secret."""

from __future__ import annotations

import pytest

from interlace.config import parse_config
from interlace.core.errors import ConfigError


def test_the_audit_log_is_on_with_hashed_content_by_default() -> None:
    audit = parse_config("{}", environ={}).audit

    assert (audit.enabled, audit.content, audit.key, audit.spool_dir) == (True, "hash", None, None)


def test_the_key_comes_from_the_environment() -> None:
    text = "audit:\n  content: none\n  hmac_key: ${INTERLACE_AUDIT_KEY}\n"

    audit = parse_config(text, environ={"INTERLACE_AUDIT_KEY": "s" * 32}).audit

    assert audit.key == b"s" * 32
    assert audit.content == "none"
    assert "s" * 32 not in repr(audit)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("audit:\n  hmac_key: plain-text-secret-key\n", "hmac_key: ${INTERLACE_AUDIT_KEY}"),
        ("audit:\n  hmac_key: ${SHORT}\n", "at least 16 characters"),
        ("audit:\n  content: everything\n", "audit.content"),
        ("audit:\n  contents: hash\n", "did you mean 'content'"),
    ],
)
def test_mistakes_are_explained_with_their_line(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, filename="interlace.yaml", environ={"SHORT": "short"})

    assert message in str(caught.value)
    assert "interlace.yaml:2" in str(caught.value)
