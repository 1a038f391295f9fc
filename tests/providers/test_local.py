"""The local provider on the real all-MiniLM-L6-v2 weights: embeddings, micro-batching, zero-shot."""

from __future__ import annotations

import asyncio
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import pytest_asyncio

import interlace
from interlace.config.schema import DeploymentConfig, LocalModelConfig
from interlace.core.errors import ConfigError, RequestError, ServiceUnavailable, UnsupportedOperation
from interlace.core.operations import ChatRequest, ClassifyRequest, EmbeddingRequest
from interlace.providers.local import (
    ACCEPTED_MODEL_NAMES,
    MAX_LABELS,
    LocalProvider,
    SentenceEncoder,
    build_encoder,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

MODEL = "all-MiniLM-L6-v2"


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def encoder() -> AsyncIterator[SentenceEncoder]:
    enc = build_encoder(MODEL, LocalModelConfig(max_batch=64, max_wait_ms=5.0))
    await enc.start()
    yield enc
    await enc.aclose()


@pytest.fixture
def provider(encoder: SentenceEncoder) -> LocalProvider:
    deployment = DeploymentConfig(provider="local", model=MODEL)
    return LocalProvider(name="minilm-local", deployment=deployment, encoder=encoder)


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def is_ready(enc: SentenceEncoder) -> bool:
    return enc.ready  # a call, so mypy does not narrow the property across start()/aclose()


def norm(v: list[float]) -> float:
    return math.sqrt(sum(x * x for x in v))


async def embed(
    provider: LocalProvider, texts: list[str], dimensions: int | None = None
) -> list[list[float]]:
    result = await provider.embed(EmbeddingRequest(model="minilm", inputs=texts, dimensions=dimensions))
    return result.vectors


# -- embeddings -------------------------------------------------------------------------------------


async def test_embedding_is_384_dimensional_and_unit_norm(provider: LocalProvider) -> None:
    result = await provider.embed(EmbeddingRequest(model="minilm", inputs=["hello world", "a second text"]))
    assert len(result.vectors) == 2
    for vector in result.vectors:
        assert len(vector) == 384
        assert norm(vector) == pytest.approx(1.0, abs=1e-5)
    assert result.model == MODEL
    # [CLS] hello world [SEP] + [CLS] a second text [SEP]: no padding counted.
    assert result.prompt_tokens == 4 + 5


async def test_close_meaning_is_closer_than_unrelated(provider: LocalProvider) -> None:
    cat, kitten, tax = await embed(
        provider,
        [
            "A cat is sleeping on the sofa.",
            "A kitten naps on the couch.",
            "Quarterly tax filings are due at the end of the month.",
        ],
    )
    assert cosine(cat, kitten) > cosine(cat, tax) + 0.3


async def test_dimensions_truncates_and_renormalizes(provider: LocalProvider) -> None:
    text = ["Matryoshka-style truncation keeps the leading dimensions."]
    (full,) = await embed(provider, text)
    (short,) = await embed(provider, text, dimensions=128)
    assert len(short) == 128
    assert norm(short) == pytest.approx(1.0, abs=1e-6)
    head_norm = norm(full[:128])
    assert short == pytest.approx([x / head_norm for x in full[:128]], abs=1e-6)
    (same,) = await embed(provider, text, dimensions=384)
    assert same == pytest.approx(full, abs=1e-6)


@pytest.mark.parametrize("dimensions", [0, -1, 385, 1024])
async def test_dimensions_out_of_range_is_rejected(provider: LocalProvider, dimensions: int) -> None:
    with pytest.raises(RequestError) as caught:
        await embed(provider, ["text"], dimensions=dimensions)
    assert caught.value.param == "dimensions"
    assert "384" in caught.value.message


async def test_token_arrays_are_rejected(provider: LocalProvider) -> None:
    with pytest.raises(RequestError) as caught:
        await provider.embed(EmbeddingRequest(model="minilm", inputs=[[101, 7592, 102]]))
    assert caught.value.param == "input"
    assert "text" in caught.value.message


async def test_empty_input_is_rejected(provider: LocalProvider, encoder: SentenceEncoder) -> None:
    with pytest.raises(RequestError) as caught:
        await provider.embed(EmbeddingRequest(model="minilm", inputs=[]))
    assert caught.value.param == "input"
    with pytest.raises(RequestError) as caught:
        await encoder.encode([])
    assert caught.value.param == "input"


async def test_long_text_is_truncated_to_the_model_window(encoder: SentenceEncoder) -> None:
    vectors, tokens = await encoder.encode(["word " * 1000])
    assert tokens == 256  # all-MiniLM-L6-v2's max_seq_length, [CLS] and [SEP] included
    assert len(vectors[0]) == 384


# -- micro-batching ---------------------------------------------------------------------------------


async def test_concurrent_requests_are_coalesced_and_each_gets_its_own_vector(
    provider: LocalProvider, encoder: SentenceEncoder
) -> None:
    texts = [f"Sentence number {i} talks about topic {i * 7 % 5}." for i in range(20)]
    texts[3] = "A much longer sentence, so that the coalesced batch has to pad the shorter ones around it."
    expected = [await encoder.encode([text]) for text in texts]  # one forward pass each

    before = encoder.batches_run
    results = await asyncio.gather(*(provider.embed(EmbeddingRequest(model="m", inputs=[t])) for t in texts))
    passes = encoder.batches_run - before

    assert passes <= 3, f"20 concurrent requests took {passes} forward passes"
    for result, (vectors, tokens) in zip(results, expected, strict=True):
        assert result.vectors[0] == pytest.approx(vectors[0], abs=1e-5)
        assert result.prompt_tokens == tokens  # padding inside the batch is not counted


async def test_a_request_larger_than_max_batch_is_split_in_order() -> None:
    small = build_encoder(MODEL, LocalModelConfig(max_batch=8, max_wait_ms=0))
    await small.start()
    try:
        texts = [f"text {i}" for i in range(20)]
        vectors, tokens = await small.encode(texts)
        assert small.batches_run == 3  # 8 + 8 + 4
        assert len(vectors) == 20
        single, single_tokens = await small.encode([texts[13]])
        assert vectors[13] == pytest.approx(single[0], abs=1e-5)
        assert tokens == 20 * single_tokens  # "[CLS] text N [SEP]" each
    finally:
        await small.aclose()


async def test_a_caller_that_gives_up_does_not_disturb_the_others(encoder: SentenceEncoder) -> None:
    tasks = [asyncio.ensure_future(encoder.encode([f"text {i}"])) for i in range(5)]
    await asyncio.sleep(0)  # all five are queued
    tasks[2].cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(results[2], asyncio.CancelledError)
    for i, result in enumerate(results):
        if i != 2:
            assert not isinstance(result, BaseException)
            assert len(result[0]) == 1
    assert encoder.ready


async def test_lifecycle_not_started_then_closed(encoder: SentenceEncoder) -> None:
    fresh = SentenceEncoder(LocalModelConfig(max_batch=4))
    assert not is_ready(fresh)
    with pytest.raises(ServiceUnavailable):
        await fresh.encode(["too early"])
    deployment = DeploymentConfig(provider="local", model=MODEL)
    idle = LocalProvider(name="idle", deployment=deployment, encoder=fresh)
    assert not idle.ready
    with pytest.raises(ServiceUnavailable):
        await idle.embed(EmbeddingRequest(model="m", inputs=["too early"]))

    await fresh.start()
    assert is_ready(fresh)
    assert fresh.dimensions == 384
    pending = [asyncio.ensure_future(fresh.encode([f"queued {i}"])) for i in range(10)]
    await asyncio.sleep(0)  # all ten are queued
    await fresh.aclose()
    assert not is_ready(fresh)
    assert all(len(task.result()[0][0]) == 384 for task in pending)  # queued work was served
    with pytest.raises(ServiceUnavailable):
        await fresh.encode(["too late"])
    await fresh.aclose()  # idempotent


async def test_provider_start_and_close_leave_the_shared_encoder_running(
    provider: LocalProvider, encoder: SentenceEncoder
) -> None:
    await provider.start()
    await provider.aclose()
    assert provider.ready
    assert encoder.ready


# -- classification ---------------------------------------------------------------------------------

SUPPORT_LABELS = ["billing", "shipping", "technical issue"]


async def test_classifier_picks_the_obvious_label(provider: LocalProvider) -> None:
    result = await provider.classify(
        ClassifyRequest(
            model="minilm",
            inputs=[
                "The invoice was charged twice to my credit card",
                "My package has not arrived yet and the tracking shows it stuck in transit",
            ],
            labels=SUPPORT_LABELS,
        )
    )
    billing, shipping = result.scores
    assert billing[0].label == "billing"
    assert shipping[0].label == "shipping"
    for ranked in result.scores:
        assert {s.label for s in ranked} == set(SUPPORT_LABELS)
        assert sum(s.score for s in ranked) == pytest.approx(1.0, abs=1e-6)
        assert [s.score for s in ranked] == sorted((s.score for s in ranked), reverse=True)
    assert billing[0].score > 0.5
    assert result.model == MODEL
    assert result.prompt_tokens > 0


async def test_multi_label_scores_are_independent_probabilities(provider: LocalProvider) -> None:
    result = await provider.classify(
        ClassifyRequest(
            model="minilm",
            inputs=["The invoice was charged twice to my credit card"],
            labels=["billing", "weather", "cooking"],
            multi_label=True,
        )
    )
    (ranked,) = result.scores
    assert all(0.0 <= s.score <= 1.0 for s in ranked)
    scores = {s.label: s.score for s in ranked}
    assert scores["billing"] > 0.5
    assert scores["weather"] < 0.5
    assert scores["cooking"] < 0.5
    assert ranked[0].label == "billing"


async def test_label_embeddings_are_cached(provider: LocalProvider, encoder: SentenceEncoder) -> None:
    labels = ["gardening", "astronomy", "taxes"]
    request = ClassifyRequest(model="m", inputs=["The telescope showed Saturn's rings"], labels=labels)
    first = await provider.classify(request)
    encoded = encoder.texts_encoded
    second = await provider.classify(request)
    assert encoder.texts_encoded - encoded == 1  # only the input, not the three hypotheses again
    # Same ranking; scores equal up to float noise (the first pass padded the input with the labels).
    assert [s.label for s in second.scores[0]] == [s.label for s in first.scores[0]]
    assert [s.score for s in second.scores[0]] == pytest.approx([s.score for s in first.scores[0]], abs=1e-6)
    assert first.scores[0][0].label == "astronomy"


@pytest.mark.parametrize(
    ("inputs", "labels", "param"),
    [
        (["text"], [], "labels"),
        (["text"], ["a", "b", "a"], "labels"),
        (["text"], ["a", "  "], "labels"),
        (["text"], [f"label {i}" for i in range(MAX_LABELS + 1)], "labels"),
        ([], ["a", "b"], "input"),
    ],
)
async def test_bad_classify_requests_name_the_field(
    provider: LocalProvider, inputs: list[str], labels: list[str], param: str
) -> None:
    with pytest.raises(RequestError) as caught:
        await provider.classify(ClassifyRequest(model="m", inputs=inputs, labels=labels))
    assert caught.value.param == param


async def test_provider_declares_what_it_serves(provider: LocalProvider) -> None:
    assert LocalProvider.kind == "local"
    assert LocalProvider.operations == frozenset({"embeddings", "classify"})
    with pytest.raises(UnsupportedOperation):
        await provider.chat(ChatRequest(model="m", body={"messages": []}))


# -- building ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ACCEPTED_MODEL_NAMES)
async def test_build_encoder_accepts_both_names(name: str) -> None:
    enc = build_encoder(name, LocalModelConfig())
    assert enc.name == "all-MiniLM-L6-v2"
    assert not enc.ready


async def test_build_encoder_rejects_other_models() -> None:
    with pytest.raises(ConfigError) as caught:
        build_encoder("bge-small-en", LocalModelConfig())
    message = str(caught.value)
    assert "bge-small-en" in message
    assert all(name in message for name in ACCEPTED_MODEL_NAMES)


_OFFLINE_PROBE = textwrap.dedent(
    """
    import asyncio, sys

    def deny_network(event, args):
        if event in {"socket.connect", "socket.getaddrinfo", "socket.gethostbyname"}:
            raise RuntimeError(f"network access during model load: {event} {args!r}")

    sys.addaudithook(deny_network)

    from interlace.config.schema import LocalModelConfig
    from interlace.providers.local import build_encoder

    async def main():
        enc = build_encoder("all-MiniLM-L6-v2", LocalModelConfig())
        await enc.start()
        vectors, _ = await enc.encode(["offline"])
        await enc.aclose()
        print(len(vectors[0]))

    asyncio.run(main())
    """
)


async def test_loading_never_touches_the_network() -> None:
    src = str(Path(interlace.__file__).resolve().parents[1])
    pythonpath = os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")]))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-W",
        "error",
        "-c",
        _OFFLINE_PROBE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": pythonpath},
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert out.decode().strip() == "384"
    assert "Loading weights" not in err.decode()  # the tqdm bar is silenced
