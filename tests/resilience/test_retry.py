"""Failure semantics: which error leads where, the retry schedule's promises, the deadline header."""

from __future__ import annotations

import random
import statistics

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from interlace.config.schema import RetryConfig
from interlace.core.errors import (
    AuthenticationError,
    CapacityExceeded,
    ConfigError,
    ContentPolicyViolation,
    ContextWindowExceeded,
    ModelNotFound,
    PayloadTooLarge,
    RequestError,
    ServiceUnavailable,
    StreamInterrupted,
    UnsupportedOperation,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from interlace.resilience.retry import Decision, RetrySchedule, classify, parse_deadline_header

# --- classify -------------------------------------------------------------------------------------

CASES: list[tuple[BaseException, Decision]] = [
    (UpstreamUnavailable("connection refused"), Decision.RETRY),
    (UpstreamTimeout("connect", code="connect_timeout"), Decision.RETRY),
    (UpstreamRateLimited("429", retry_after=2), Decision.RETRY),
    (UpstreamRateLimited("429 without retry-after"), Decision.RETRY),
    (UpstreamError("failed with 503"), Decision.RETRY),
    (UpstreamProtocolError("malformed body"), Decision.RETRY),
    (StreamInterrupted("ended without [DONE]"), Decision.RETRY),
    (UpstreamTimeout("silent", code="first_byte_timeout"), Decision.FAIL_OVER),
    (UpstreamTimeout("slow", code="total_timeout"), Decision.FAIL_OVER),
    (UpstreamTimeout("a timeout added later", code="first_token_timeout"), Decision.FAIL_OVER),
    (UpstreamTimeout("no code"), Decision.FAIL_OVER),
    (StreamInterrupted("went silent", code="idle_timeout"), Decision.FAIL_OVER),
    (StreamInterrupted("too long", code="total_timeout"), Decision.FAIL_OVER),
    (CapacityExceeded("bulkhead full"), Decision.FAIL_OVER),
    (ServiceUnavailable("local model loading"), Decision.FAIL_OVER),
    (ContextWindowExceeded("too long", param="messages"), Decision.CONTEXT_FALLBACK),
    (ContentPolicyViolation("refused"), Decision.CONTENT_POLICY),
    (UpstreamRejected("bad request", upstream_status=400), Decision.STOP),
    (UpstreamRejected("unprocessable", upstream_status=422), Decision.STOP),
    (RequestError("bad field", param="x"), Decision.STOP),
    (PayloadTooLarge("too big"), Decision.STOP),
    (UnsupportedOperation("no chat on minilm"), Decision.STOP),
    (ModelNotFound("gpt-9", ["a"]), Decision.STOP),
    (AuthenticationError("bad key"), Decision.STOP),
    (ConfigError("bad config"), Decision.STOP),
    (ValueError("a bug"), Decision.STOP),
    (TimeoutError(), Decision.STOP),
    (KeyboardInterrupt(), Decision.STOP),
]


@pytest.mark.parametrize(
    ("error", "expected"), CASES, ids=[f"{type(e).__name__}-{getattr(e, 'code', '')}" for e, _ in CASES]
)
def test_classify(error: BaseException, expected: Decision) -> None:
    assert classify(error) is expected


def test_decision_is_a_str_enum() -> None:
    assert str(Decision.FAIL_OVER) == f"{Decision.FAIL_OVER}" == "fail_over"
    assert {d.value for d in Decision} == {"retry", "fail_over", "context_fallback", "content_policy", "stop"}


# --- RetrySchedule --------------------------------------------------------------------------------


def schedule(
    *,
    max_attempts: int = 3,
    base_delay: float = 0.25,
    max_delay: float = 8.0,
    max_retry_after: float = 30.0,
    deadline: float = 1e9,
    seed: int = 0,
) -> RetrySchedule:
    config = RetryConfig(
        max_attempts=max_attempts, base_delay=base_delay, max_delay=max_delay, max_retry_after=max_retry_after
    )
    return RetrySchedule.from_config(config, deadline=deadline, rng=random.Random(seed))


def test_from_config_copies_the_config_and_starts_with_the_whole_budget() -> None:
    s = schedule(max_attempts=4)
    assert (s.max_attempts, s.base_delay, s.max_delay, s.max_retry_after) == (4, 0.25, 8.0, 30.0)
    assert s.attempts == 0
    assert s.attempts_left == 4
    assert s.record_attempt() == 1
    assert s.attempts_left == 3


def test_budget_counts_attempts_across_deployments() -> None:
    s = schedule(max_attempts=3)
    s.record_attempt()  # deployment a
    assert s.delay_before(1, retry_after=None, now=0.0) is not None
    s.record_attempt()  # failed over to deployment b, no wait
    assert s.can_attempt(0.0)
    s.record_attempt()
    assert s.attempts_left == 0
    assert not s.can_attempt(0.0)
    assert s.delay_before(1, retry_after=None, now=0.0) is None  # recorded attempts reached the budget
    assert schedule(max_attempts=3).delay_before(3, retry_after=None, now=0.0) is None


def test_one_attempt_means_no_retry() -> None:
    assert schedule(max_attempts=1).delay_before(1, retry_after=None, now=0.0) is None


def test_retry_after_is_honoured_and_bounded() -> None:
    s = schedule(base_delay=0.01, max_delay=0.02, max_retry_after=5.0)
    assert s.delay_before(1, retry_after=3.0, now=0.0) == 3.0
    assert s.delay_before(1, retry_after=5.0, now=0.0) == 5.0
    assert s.delay_before(1, retry_after=5.01, now=0.0) is None


def test_deadline_stops_retries() -> None:
    s = schedule(base_delay=0.0, deadline=10.0)
    assert s.delay_before(1, retry_after=None, now=9.0) == 0.0
    assert s.delay_before(1, retry_after=1.0, now=9.0) is None  # 9 + 1 reaches the deadline
    assert s.delay_before(1, retry_after=None, now=10.0) is None
    assert not s.can_attempt(10.0)
    assert s.time_left(9.5) == 0.5


def test_retry_number_is_one_based() -> None:
    with pytest.raises(ValueError, match="1-based"):
        schedule().delay_before(0, retry_after=None, now=0.0)


def test_huge_retry_numbers_do_not_overflow() -> None:
    s = schedule(max_attempts=20)
    s.max_attempts = 10**6  # beyond the config's bound, on purpose
    delay = s.delay_before(5000, retry_after=None, now=0.0)
    assert delay is not None
    assert 0 <= delay <= 8.0


retry_afters = st.one_of(st.none(), st.floats(min_value=0, max_value=100, allow_nan=False))
steps = st.lists(st.tuples(retry_afters, st.floats(min_value=0, max_value=20, allow_nan=False)), max_size=25)


@settings(max_examples=300, deadline=None)
@given(
    max_attempts=st.integers(min_value=1, max_value=20),
    base_delay=st.floats(min_value=0, max_value=10, allow_nan=False),
    max_delay=st.floats(min_value=0, max_value=60, allow_nan=False),
    max_retry_after=st.floats(min_value=0, max_value=60, allow_nan=False),
    budget=st.floats(min_value=0, max_value=200, allow_nan=False),
    start=st.floats(min_value=0, max_value=1e6, allow_nan=False),
    seed=st.integers(min_value=0, max_value=2**32),
    inputs=steps,
)
def test_schedule_properties(
    *,
    max_attempts: int,
    base_delay: float,
    max_delay: float,
    max_retry_after: float,
    budget: float,
    start: float,
    seed: int,
    inputs: list[tuple[float | None, float]],
) -> None:
    s = schedule(
        max_attempts=max_attempts,
        base_delay=base_delay,
        max_delay=max_delay,
        max_retry_after=max_retry_after,
        deadline=start + budget,
        seed=seed,
    )
    now = start
    s.record_attempt()  # the first attempt
    for retry_after, elapsed in inputs:
        now += elapsed
        retry_number = s.attempts
        cap = min(max_delay, base_delay * 2 ** (retry_number - 1))
        delay = s.delay_before(retry_number, retry_after=retry_after, now=now)
        if s.attempts >= max_attempts:
            assert delay is None
        if retry_after is not None and retry_after > max_retry_after:
            assert delay is None
        if delay is None:
            # it gives up only for a reason: budget, an over-long Retry-After, or the deadline
            longest = max(cap, retry_after or 0.0)
            assert (
                s.attempts >= max_attempts
                or (retry_after is not None and retry_after > max_retry_after)
                or now + longest >= s.deadline
            )
            continue
        assert delay >= 0
        assert now + delay < s.deadline
        assert delay <= max(max_delay, retry_after or 0.0)
        if retry_after is not None:
            assert delay >= retry_after
        else:
            assert delay <= cap
        now += delay
        s.record_attempt()
    assert s.attempts <= max_attempts


def test_full_jitter_is_spread_over_zero_to_cap() -> None:
    s = schedule(max_attempts=10, base_delay=1.0, max_delay=8.0, seed=1234)
    cap = 4.0  # third retry: min(8, 1 * 2**2)
    draws = [s.delay_before(3, retry_after=None, now=0.0) for _ in range(20_000)]
    values = [d for d in draws if d is not None]
    assert len(values) == len(draws)
    assert all(0 <= v <= cap for v in values)
    assert statistics.fmean(values) == pytest.approx(cap / 2, rel=0.02)
    assert statistics.pstdev(values) == pytest.approx(cap / 12**0.5, rel=0.03)
    deciles = [0] * 10
    for v in values:
        deciles[min(9, int(v / cap * 10))] += 1
    assert all(1700 < count < 2300 for count in deciles), deciles


def test_cap_grows_exponentially_up_to_max_delay() -> None:
    s = schedule(max_attempts=20, base_delay=0.5, max_delay=3.0, seed=7)
    for retry_number, cap in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 3.0), (10, 3.0)]:
        draws = [s.delay_before(retry_number, retry_after=None, now=0.0) for _ in range(2000)]
        assert max(d for d in draws if d is not None) == pytest.approx(cap, rel=0.01)


# --- the deadline header --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, 60.0),
        ("12", 12.0),
        ("1.5", 1.5),
        (".5", 0.5),
        ("12s", 12.0),
        ("1500ms", 1.5),
        ("1500MS", 1.5),
        (" 250 ms ", 0.25),
        ("0.5ms", 0.0005),
        ("600", 600.0),
        ("601", 600.0),  # clamped
        ("99999999", 600.0),
    ],
)
def test_deadline_header(value: str | None, expected: float) -> None:
    assert parse_deadline_header(value, default=60.0, maximum=600.0) == pytest.approx(expected)


def test_deadline_header_default_is_bounded_by_the_maximum() -> None:
    assert parse_deadline_header(None, default=900.0, maximum=600.0) == 600.0


@pytest.mark.parametrize(
    "value",
    ["", " ", "0", "0ms", "0.0", "-1", "+5", "abc", "1e3", "inf", "nan", "12 seconds", "1,5", "5m", "1h"],
)
def test_invalid_deadline_header_names_the_header_and_the_forms(value: str) -> None:
    with pytest.raises(RequestError) as caught:
        parse_deadline_header(value, default=60.0, maximum=600.0, header="x-my-timeout")
    error = caught.value
    assert error.param == "x-my-timeout"
    assert error.status == 400
    assert "x-my-timeout" in error.message
    assert "'1.5'" in error.message
    assert "'1500ms'" in error.message


def test_deadline_header_default_name() -> None:
    with pytest.raises(RequestError) as caught:
        parse_deadline_header("soon", default=60.0, maximum=600.0)
    assert caught.value.param == "x-interlace-timeout"
