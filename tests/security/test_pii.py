"""PII masking: detection, reversible placeholders, streamed restoration and the admission policy."""

from __future__ import annotations

import itertools
import json
import socket
import subprocess
import sys
import textwrap
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from interlace.config import parse_config
from interlace.config.pii import ALL_ENTITIES, NATIONAL_IDS, PiiConfig
from interlace.core.errors import ContentPolicyViolation
from interlace.core.operations import ChatRequest, ClassifyRequest, EmbeddingRequest
from interlace.core.principal import Principal
from interlace.routing.context import RouteContext
from interlace.runtime import Runtime
from interlace.security.gate import Call, Gate
from interlace.security.pii import Masker, PiiPolicy, StreamRestorer, restore_answer, restore_stream
from interlace.security.pii.detector import Detector, may_hold_phone_number, min_phone_digits

#: (entity type, text, the value that must be found)
SAMPLES = [
    ("EMAIL_ADDRESS", "write to john.doe@example.com today", "john.doe@example.com"),
    ("PHONE_NUMBER", "call +1 (415) 555-2671 now", "+1 (415) 555-2671"),
    ("PHONE_NUMBER", "office: 020 7946 0958.", "020 7946 0958"),
    ("CREDIT_CARD", "card 4111 1111 1111 1111 exp 12/29", "4111 1111 1111 1111"),
    ("IBAN_CODE", "IBAN DE89 3704 0044 0532 0130 00 please", "DE89 3704 0044 0532 0130 00"),
    ("IP_ADDRESS", "host 192.168.1.20 is down", "192.168.1.20"),
    ("IP_ADDRESS", "v6 2001:db8::8a2e:370:7334 route", "2001:db8::8a2e:370:7334"),
    ("US_SSN", "SSN 536-90-4399 on file", "536-90-4399"),
    ("UK_NINO", "NI number AB123456C", "AB123456C"),
    ("UK_NHS", "NHS number 943 476 5919", "943 476 5919"),
    ("ES_NIF", "NIF 12345678Z", "12345678Z"),
    ("ES_NIE", "NIE X1234567L", "X1234567L"),
    ("IT_FISCAL_CODE", "codice fiscale RSSMRA85T10A562S", "RSSMRA85T10A562S"),
    ("PL_PESEL", "PESEL 44051401359", "44051401359"),
    ("FI_PERSONAL_IDENTITY_CODE", "henkilötunnus 131052-308T", "131052-308T"),
    ("SE_PERSONNUMMER", "personnummer 811228-9874", "811228-9874"),
    (
        "SECRET",
        "key sk-proj-abcdefghijklmnopqrstuvwxyz0123456789 ok",
        "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789",
    ),
    (
        "SECRET",
        "key sk-ant-api03-abcdefghijklmnopqrstuvwxyz_0123 ok",
        "sk-ant-api03-abcdefghijklmnopqrstuvwxyz_0123",
    ),
    ("SECRET", "aws AKIAIOSFODNN7EXAMPLE there", "AKIAIOSFODNN7EXAMPLE"),
    (
        "SECRET",
        "gh ghp_abcdefghijklmnopqrstuvwxyz0123456789AB x",
        "ghp_abcdefghijklmnopqrstuvwxyz0123456789AB",
    ),
    ("SECRET", "slack xoxb-1234567890-abcdefghij x", "xoxb-1234567890-abcdefghij"),
    (
        "SECRET",
        "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    ),
    (
        "SECRET",
        "key:\n-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\nq83b\n-----END RSA PRIVATE KEY-----\nend",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\nq83b\n-----END RSA PRIVATE KEY-----",
    ),
    ("SECRET", "db password=hunter22 and more", "hunter22"),
    ("SECRET", '{"api_key": "abcd1234efgh"}', "abcd1234efgh"),
]


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector(ALL_ENTITIES, phone_regions=["US", "GB", "DE", "FR", "IL", "IN", "CA", "BR"])


def values(detector: Detector, text: str, entities: Any = ALL_ENTITIES) -> list[tuple[str, str]]:
    return [(d.entity, text[d.start : d.end]) for d in detector.find(text, entities)]


# --- detection ---


@pytest.mark.parametrize(("entity", "text", "value"), SAMPLES)
def test_each_entity_type_is_found(detector: Detector, entity: str, text: str, value: str) -> None:
    assert (entity, value) in values(detector, text)


def test_only_the_selected_entity_types_are_looked_for(detector: Detector) -> None:
    text = "mail john.doe@example.com, card 4111 1111 1111 1111"
    assert values(detector, text, {"CREDIT_CARD"}) == [("CREDIT_CARD", "4111 1111 1111 1111")]


def test_numbers_with_a_bad_checksum_are_not_masked(detector: Detector) -> None:
    text = "card 4111 1111 1111 1112 and IBAN DE89 3704 0044 0532 0130 01"
    assert values(detector, text) == []


def test_a_secret_assignment_keeps_its_key_name(detector: Detector) -> None:
    masker = Masker()
    text = "connect with PASSWORD: s3cr3t!x and api-key=0123abcd"
    masked = masker.mask(text, detector.find(text, {"SECRET"}))
    assert masked == "connect with PASSWORD: <SECRET_1> and api-key=<SECRET_2>"


def test_overlaps_merge_typed_by_the_longest_span(detector: Detector) -> None:
    # 415 555 2671 alone would pass the NHS checksum: the phone number around it wins
    assert values(detector, "call +1 415 555 2671") == [("PHONE_NUMBER", "+1 415 555 2671")]
    # partly overlapping: one span covering both
    assert values(detector, "ip 10.0.0.1 or a@10.0.0.1.example.com") == [
        ("IP_ADDRESS", "10.0.0.1"),
        ("EMAIL_ADDRESS", "a@10.0.0.1.example.com"),
    ]


PHONE_REGIONS = ["US", "GB", "DE", "FR", "IL", "IN", "CA", "BR"]
PHONE_NUMBERS = ["+1 (415) 555-2671", "020 7946 0958", "030 1234", "+49 30 901820", "+683 4002", "2024"]
PHONE_PIECES = st.sampled_from(
    [
        *PHONE_NUMBERS,
        "12",
        "3",
        "-",
        " ",
        "(",
        ")",
        "+",
        ".",
        "/",
        "x",
        "ext. 12",
        "call",
        "\n",
        "\u0663\u0664\u0665",
    ]
)


@settings(max_examples=200, deadline=None)
@given(pieces=st.lists(st.one_of(PHONE_PIECES, st.text(alphabet="0123456789 -+().", max_size=8)), max_size=8))
def test_the_phone_pre_check_changes_no_result(pieces: list[str]) -> None:
    from presidio_analyzer.predefined_recognizers import PhoneRecognizer  # noqa: PLC0415 - slow import

    text = "".join(pieces)
    plain = PhoneRecognizer(supported_regions=tuple(PHONE_REGIONS))
    results = plain.analyze(text, ["PHONE_NUMBER"], None)  # type: ignore[arg-type]
    expected = {i for r in results for i in range(r.start, r.end)}  # the characters found
    found = Detector({"PHONE_NUMBER"}, phone_regions=PHONE_REGIONS, min_score=0).find(text, {"PHONE_NUMBER"})
    assert {i for d in found for i in range(d.start, d.end)} == expected
    if not may_hold_phone_number(text, min_phone_digits(PHONE_REGIONS)):
        assert expected == set()


def test_the_phone_pre_check_skips_short_numbers() -> None:
    assert min_phone_digits(PHONE_REGIONS) == 4  # German national numbers can be that short
    assert not may_hold_phone_number("3 deals closed, 12 open, ask 7", 4)
    assert may_hold_phone_number("in 2024", 4)
    assert may_hold_phone_number("030 - 12", 4)


def test_email_domains_are_checked_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    lookups: list[object] = []

    def no_network(*args: object, **kwargs: object) -> None:
        lookups.append(args)
        raise OSError("no network in this test")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    fresh = Detector({"EMAIL_ADDRESS"})  # its suffix list is loaded on first use
    assert values(fresh, "a@example.com b@mail.co.uk c@host.invalidtld") == [
        ("EMAIL_ADDRESS", "a@example.com"),
        ("EMAIL_ADDRESS", "b@mail.co.uk"),
    ]
    assert lookups == []


# --- placeholders ---


def test_the_same_value_gets_the_same_placeholder(detector: Detector) -> None:
    masker = Masker()
    first = "from a@example.com to b@example.com"
    second = "cc a@example.com, call +44 20 7946 0958"
    assert (
        masker.mask(first, detector.find(first, ALL_ENTITIES))
        == "from <EMAIL_ADDRESS_1> to <EMAIL_ADDRESS_2>"
    )
    assert (
        masker.mask(second, detector.find(second, ALL_ENTITIES))
        == "cc <EMAIL_ADDRESS_1>, call <PHONE_NUMBER_1>"
    )
    assert dict(masker.entity_counts()) == {"EMAIL_ADDRESS": 2, "PHONE_NUMBER": 1}


def test_a_placeholder_the_user_typed_is_never_handed_out(detector: Detector) -> None:
    text = "literal <EMAIL_ADDRESS_1> and real a@example.com"
    masker = Masker([text])
    masked = masker.mask(text, detector.find(text, ALL_ENTITIES))
    assert masked == "literal <EMAIL_ADDRESS_1> and real <EMAIL_ADDRESS_2>"
    assert masker.restore(masked) == text
    assert masker.restore("<EMAIL_ADDRESS_1> <EMAIL_ADDRESS_2> <EMAIL_ADDRESS_3>") == (
        "<EMAIL_ADDRESS_1> a@example.com <EMAIL_ADDRESS_3>"
    )


def test_restoring_into_json_escapes_the_value() -> None:
    masker = Masker()
    placeholder = masker.placeholder("SECRET", 'line1\n"quoted"')
    arguments = json.dumps({"key": placeholder})
    assert json.loads(masker.restore(arguments, json_string=True)) == {"key": 'line1\n"quoted"'}


PII_FRAGMENTS = st.sampled_from(
    [value for _, _, value in SAMPLES] + ["<EMAIL_ADDRESS_1>", "<SECRET_", "<", ">"]
)
TEXTS = st.lists(st.one_of(st.text(max_size=12), PII_FRAGMENTS), max_size=8).map(" ".join)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=TEXTS)
def test_restore_undoes_mask_on_any_text(detector: Detector, text: str) -> None:
    masker = Masker([text])
    masked = masker.mask(text, detector.find(text, ALL_ENTITIES))
    assert masker.restore(masked) == text


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=TEXTS, cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=10))
def test_a_stream_split_anywhere_is_restored(detector: Detector, text: str, cuts: list[int]) -> None:
    masker = Masker([text])
    masked = masker.mask(text, detector.find(text, ALL_ENTITIES))
    bounds = sorted({0, len(masked), *(c for c in cuts if c < len(masked))})
    stream = [content_chunk(masked[a:b]) for a, b in itertools.pairwise(bounds)]
    stream.append(content_chunk(None, finish="stop"))
    restorer = StreamRestorer(masker)
    out = [chunk for sent in stream for chunk in restorer.feed(sent)]
    assert "".join(chunk["choices"][0]["delta"].get("content", "") for chunk in out) == text


# --- streams and answers ---


def content_chunk(content: str | None, *, finish: str | None = None, index: int = 0) -> dict[str, Any]:
    delta = {} if content is None else {"content": content}
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "model": "m",
        "choices": [{"index": index, "delta": delta, "finish_reason": finish}],
    }


def tool_chunk(arguments: str, *, call: int = 0) -> dict[str, Any]:
    delta = {"tool_calls": [{"index": call, "function": {"arguments": arguments}}]}
    return {
        "id": "chatcmpl-1",
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
    }


async def chunks_of(items: list[dict[str, Any]]) -> AsyncGenerator[dict[str, Any], None]:
    for item in items:
        yield item


async def collect(chunks: AsyncIterator[dict[str, Any]]) -> list[dict[str, Any]]:
    return [chunk async for chunk in chunks]


def masker_with(*pairs: tuple[str, str]) -> Masker:
    masker = Masker()
    for entity, value in pairs:
        masker.placeholder(entity, value)
    return masker


async def test_a_placeholder_split_across_chunks_is_restored() -> None:
    masker = masker_with(("EMAIL_ADDRESS", "jane@example.com"))
    stream = [content_chunk(p) for p in ("echo: mail <EMAIL", "_ADDRE", "SS_1", "> now <", "3")]
    stream.append(content_chunk(None, finish="stop"))
    out = await collect(restore_stream(masker, chunks_of(stream)))
    contents = [c["choices"][0]["delta"].get("content") for c in out]
    assert contents == ["echo: mail ", "", "", "jane@example.com now ", "<3", None]
    assert out[-1]["choices"][0]["finish_reason"] == "stop"


async def test_what_is_held_back_is_sent_before_the_finish_chunk() -> None:
    masker = masker_with(("EMAIL_ADDRESS", "jane@example.com"))
    stream = [content_chunk("almost <EMAIL_ADD"), content_chunk(None, finish="stop")]
    out = await collect(restore_stream(masker, chunks_of(stream)))
    assert [c["choices"][0]["delta"].get("content") for c in out] == ["almost ", "<EMAIL_ADD", None]
    assert [c["choices"][0]["finish_reason"] for c in out] == [None, None, "stop"]
    assert out[1]["id"] == "chatcmpl-1"


async def test_a_stream_without_a_finish_chunk_is_flushed_at_its_end() -> None:
    masker = masker_with(("SECRET", "hunter22"))
    out = await collect(restore_stream(masker, chunks_of([content_chunk("x <SEC")])))
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in out) == "x <SEC"


async def test_tool_call_arguments_are_restored_across_chunks() -> None:
    masker = masker_with(("SECRET", 'pa"ss'), ("EMAIL_ADDRESS", "a@example.com"))
    arguments = json.dumps({"password": "<SECRET_1>", "to": "<EMAIL_ADDRESS_1>"})
    stream = [tool_chunk(arguments[i : i + 8]) for i in range(0, len(arguments), 8)]
    stream.append({"id": "chatcmpl-1", "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})
    out = await collect(restore_stream(masker, chunks_of(stream)))
    text = "".join(
        call["function"]["arguments"]
        for chunk in out
        for call in chunk["choices"][0]["delta"].get("tool_calls", [])
    )
    assert json.loads(text) == {"password": 'pa"ss', "to": "a@example.com"}


def test_a_complete_answer_is_restored() -> None:
    masker = masker_with(("EMAIL_ADDRESS", "a@example.com"))
    answer = {
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "hi <EMAIL_ADDRESS_1>"}},
            {
                "index": 1,
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [{"function": {"name": "f", "arguments": '{"to": "<EMAIL_ADDRESS_1>"}'}}],
                },
            },
        ]
    }
    restored = restore_answer(masker, answer)
    assert restored["choices"][0]["message"]["content"] == "hi a@example.com"
    assert (
        restored["choices"][1]["message"]["tool_calls"][0]["function"]["arguments"]
        == '{"to": "a@example.com"}'
    )


# --- the policy ---

TENANT = Principal(kind="key", id="ik_1", tenant="bank")
OTHER = Principal(kind="key", id="ik_2", tenant="shop")


def policy_from(yaml_text: str, detector: Detector) -> PiiPolicy:
    config = parse_config(yaml_text, filename="test.yaml", environ={})
    policy = PiiPolicy(config.pii, config.tenants, detector=lambda _entities: detector)
    assert PiiPolicy.from_config(config) is not None
    return policy


def chat(*messages: dict[str, Any]) -> ChatRequest:
    return ChatRequest(model="m", body={"model": "m", "messages": list(messages)})


async def admit(
    policy: PiiPolicy, op: Any, *, endpoint: str = "chat", principal: Principal = OTHER
) -> Call[Any]:
    call: Call[Any] = Call(principal, endpoint, op, RouteContext(principal=principal))
    await Gate([policy]).admit(call)
    return call


def test_without_an_action_no_policy_is_built_and_presidio_is_not_imported(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import sys
        from interlace.config import parse_config
        from interlace.runtime import Runtime
        yaml = "state: {{dir: '{tmp_path}'}}\\npii: {{action: allow}}\\n"
        runtime = Runtime(parse_config(yaml, filename="t.yaml", environ={{}}))
        assert runtime.pii is None
        assert [p.name for p in runtime.gate.policies if p.name == "pii"] == []
        loaded = sorted(m for m in ("spacy", "presidio_analyzer", "tldextract") if m in sys.modules)
        print(",".join(loaded) or "none")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "none"


@pytest.mark.parametrize("residency", ["", "residency: {provider_types: [external, private, local]}\n"])
def test_the_policy_sits_after_scopes_and_residency_before_limits(tmp_path: Path, residency: str) -> None:
    yaml = f"state: {{dir: '{tmp_path}'}}\npii: {{action: mask}}\n{residency}"
    runtime = Runtime(parse_config(yaml, filename="t.yaml", environ={}))
    names = [policy.name for policy in runtime.gate.policies]
    expected = ["scopes", "residency", "pii"] if residency else ["scopes", "pii"]
    assert names[: len(expected)] == expected
    assert runtime.pii is not None
    assert runtime.pii.entities_acted_on() == set(ALL_ENTITIES)


async def test_mask_replaces_values_and_the_hold_restores_them(detector: Detector) -> None:
    policy = policy_from("pii: {action: mask}\n", detector)
    op = chat(
        {"role": "system", "content": "support bot; escalate to ops@example.com"},
        {
            "role": "user",
            "content": [{"type": "text", "text": "I am a@example.com, card 4111 1111 1111 1111"}],
        },
        {"role": "assistant", "content": None, "tool_calls": [tool_call('{"to": "a@example.com"}')]},
        {"role": "tool", "tool_call_id": "c1", "content": "sent to a@example.com from 10.0.0.7"},
    )
    op.body["user"] = "a@example.com"
    call = await admit(policy, op)
    sent = json.dumps(call.op.body)
    for value in ("ops@example.com", "a@example.com", "4111 1111 1111 1111", "10.0.0.7"):
        assert value not in sent
    messages = call.op.body["messages"]
    assert messages[1]["content"][0]["text"] == "I am <EMAIL_ADDRESS_2>, card <CREDIT_CARD_1>"
    assert json.loads(messages[2]["tool_calls"][0]["function"]["arguments"]) == {"to": "<EMAIL_ADDRESS_2>"}
    assert messages[3]["content"] == "sent to <EMAIL_ADDRESS_2> from <IP_ADDRESS_1>"
    assert call.op.body["user"] == "<EMAIL_ADDRESS_2>"
    assert op.body["messages"][1]["content"][0]["text"].startswith(
        "I am a@example.com"
    )  # caller's body untouched
    assert call.ctx.decisions == ["pii:mask CREDIT_CARD=1 EMAIL_ADDRESS=2 IP_ADDRESS=1"]
    admission = await Gate([policy]).admit(Call(OTHER, "chat", op, RouteContext()))
    answer = {"choices": [{"index": 0, "message": {"content": "ok <EMAIL_ADDRESS_2> <CREDIT_CARD_1>"}}]}
    restored = admission.restore(answer)
    assert restored["choices"][0]["message"]["content"] == "ok a@example.com 4111 1111 1111 1111"


def tool_call(arguments: str) -> dict[str, Any]:
    return {"id": "c1", "type": "function", "function": {"name": "send", "arguments": arguments}}


async def test_a_long_request_is_masked_too(detector: Detector) -> None:
    policy = policy_from("pii: {action: mask}\n", detector)
    text = "filler words " * 2000 + "a@example.com"  # past OFFLOAD_CHARS: scanned in a worker thread
    call = await admit(policy, chat({"role": "user", "content": text}))
    assert call.op.body["messages"][0]["content"] == "filler words " * 2000 + "<EMAIL_ADDRESS_1>"


async def test_a_request_without_pii_is_untouched_and_holds_nothing(detector: Detector) -> None:
    policy = policy_from("pii: {action: mask}\n", detector)
    op = chat({"role": "user", "content": "nothing personal here, 42 apples"})
    call = Call(OTHER, "chat", op, RouteContext())
    assert await policy.admit(call) is None
    assert call.op is op
    assert call.ctx.decisions == []


async def test_block_rejects_naming_the_types_never_the_values(detector: Detector) -> None:
    policy = policy_from("pii: {action: block}\n", detector)
    with pytest.raises(ContentPolicyViolation) as raised:
        await admit(
            policy,
            chat({"role": "user", "content": "key sk-proj-abcdefghijklmnopqrstuvwxyz0123 a@example.com"}),
        )
    error = raised.value
    assert (error.status, error.code, error.param) == (400, "pii_detected", "messages")
    assert "EMAIL_ADDRESS, SECRET" in error.message
    assert "example.com" not in error.message
    assert "sk-proj" not in error.message


async def test_embeddings_and_classify_inputs_are_masked(detector: Detector) -> None:
    policy = policy_from("pii: {action: mask}\n", detector)
    request = EmbeddingRequest(model="e", inputs=["a@example.com", "plain"], user="b@example.com")
    embed = await admit(policy, request, endpoint="embeddings")
    assert (embed.op.inputs, embed.op.user) == (["<EMAIL_ADDRESS_1>", "plain"], "<EMAIL_ADDRESS_2>")
    tokens = EmbeddingRequest(model="e", inputs=[[1, 2, 3]])
    assert (await admit(policy, tokens, endpoint="embeddings")).op is tokens
    classify = ClassifyRequest(model="c", inputs=["call +44 20 7946 0958"], labels=["x", "y"])
    assert (await admit(policy, classify, endpoint="classify")).op.inputs == ["call <PHONE_NUMBER_1>"]


LAYERED = """
pii:
  action: mask
  entities: [EMAIL_ADDRESS, SECRET]
  endpoints:
    embeddings: {action: allow}
tenants:
  bank:
    pii:
      action: block
      entities: [CREDIT_CARD, NATIONAL_ID]
      endpoints:
        classify: {action: mask}
  shop: {}
"""


def test_the_most_specific_setting_wins(detector: Detector) -> None:
    policy = policy_from(LAYERED, detector)
    assert policy.rule(None, "chat").action == "mask"
    assert policy.rule(None, "chat").entities == {"EMAIL_ADDRESS", "SECRET"}
    assert policy.rule(None, "embeddings").action == "allow"
    assert policy.rule("shop", "embeddings").action == "allow"  # a tenant without pii: the global rule
    bank = policy.rule("bank", "chat")
    assert bank.action == "block"
    assert bank.entities == {"CREDIT_CARD", *NATIONAL_IDS}
    assert (
        policy.rule("bank", "embeddings").action == "block"
    )  # the tenant's action beats the global endpoint
    assert policy.rule("bank", "classify").action == "mask"
    assert policy.rule("bank", "infer").action == "allow"
    assert policy.entities_acted_on() == {"EMAIL_ADDRESS", "SECRET", "CREDIT_CARD", *NATIONAL_IDS}


async def test_a_tenant_override_applies_to_its_requests_only(detector: Detector) -> None:
    policy = policy_from(LAYERED, detector)
    text = "card 4111 1111 1111 1111, mail a@example.com"
    other = await admit(policy, chat({"role": "user", "content": text}), principal=OTHER)
    assert other.op.body["messages"][0]["content"] == "card 4111 1111 1111 1111, mail <EMAIL_ADDRESS_1>"
    with pytest.raises(ContentPolicyViolation, match="CREDIT_CARD"):
        await admit(policy, chat({"role": "user", "content": text}), principal=TENANT)


def test_config_errors_name_the_field() -> None:
    with pytest.raises(ValidationError, match="entities"):
        PiiConfig.model_validate({"action": "mask", "entities": ["EMAIL"]})
    with pytest.raises(ValidationError, match="detects nothing"):
        PiiConfig.model_validate({"action": "mask", "entities": []})
    with pytest.raises(ValidationError, match="action"):
        PiiConfig.model_validate({"action": "redact"})
