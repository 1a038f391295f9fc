"""The chain's pure parts: canonical form, hashes, the entry body, and verification of rows in order."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.support.events import at, record

from interlace.security.audit.chain import (
    GENESIS,
    ChainRow,
    canonical,
    content_digest,
    entry_hash,
    verify_rows,
)
from interlace.security.audit.entry import audit_body, format_time

KEY = b"k" * 32


def build(count: int, key: bytes | None = KEY, *, first: int = 1, prev: str = GENESIS) -> list[ChainRow]:
    """A valid chain of ``count`` rows as a file holds them (no stored position)."""
    rows: list[ChainRow] = []
    for seq in range(first, first + count):
        entry = {"seq": seq, "alg": "hmac-sha256" if key else "sha256", "tenant": f"t{seq % 3}", "n": seq}
        digest = entry_hash(prev, entry, key)
        rows.append(ChainRow(entry=entry, prev_hash=prev, hash=digest))
        prev = digest
    return rows


def test_the_canonical_form_is_sorted_compact_utf8_and_has_no_floats() -> None:
    assert canonical({"b": 1, "a": ["é", None, True]}) == '{"a":["é",null,true],"b":1}'.encode()
    with pytest.raises(TypeError, match="no floats"):
        canonical({"cost": 0.5})


def test_the_hash_covers_the_previous_hash_and_the_entry() -> None:
    entry = {"seq": 1, "alg": "sha256"}
    message = GENESIS.encode() + b'{"alg":"sha256","seq":1}'

    assert entry_hash(GENESIS, entry, None) == hashlib.sha256(message).hexdigest()
    assert entry_hash(GENESIS, entry, KEY) == hmac.new(KEY, message, hashlib.sha256).hexdigest()
    assert entry_hash("1" * 64, entry, None) != entry_hash(GENESIS, entry, None)


def test_content_digests() -> None:
    assert content_digest("answer") == hashlib.sha256(b"answer").hexdigest()
    assert content_digest([{"role": "user", "content": "x"}]) == content_digest(
        [{"content": "x", "role": "user"}]
    )
    assert content_digest(None) is None


def test_an_entry_body_has_no_floats_and_a_utc_time() -> None:
    body = audit_body(record(started_at=at("2026-11-27", 11), cost_usd=0.0125, tenant="acme"))

    canonical(body)  # no floats anywhere
    assert body["time"] == "2026-11-27T11:00:00.000000Z"
    assert body["cost_nanos"] == 12_500_000
    assert body["duration_ms"] == 250
    assert body["content"] == "hash"
    assert body["prompt_sha256"] is None  # the record carried no content
    assert audit_body(record())["entry_id"] != body["entry_id"]


def problem(rows: list[ChainRow], key: bytes | None = KEY, **options: Any) -> tuple[str, int] | None:
    result = verify_rows(rows, key, **options)
    return None if result.problem is None else (result.problem.kind, result.problem.seq)


def test_rows_in_order_verify() -> None:
    result = verify_rows(build(5), KEY)

    assert result.ok
    assert (result.checked, result.head_seq, result.head_hash) == (5, 5, build(5)[-1].hash)


def test_an_entry_moved_far_is_reordered_or_missing_where_it_left() -> None:
    rows = build(6)

    assert problem([*rows[:2], rows[3], rows[2], *rows[4:]]) == ("reordered", 3)
    assert problem([*rows[:2], *rows[3:], rows[2]]) == ("deleted", 3)


def test_a_run_starting_mid_chain_is_taken_as_given_unless_the_start_is_required() -> None:
    rows = build(6)

    assert problem(rows[2:], start=None) is None
    assert problem(rows[2:]) == ("deleted", 1)


def test_a_subset_checks_each_entry_and_the_links_it_has() -> None:
    rows = build(6)
    subset = [rows[0], rows[2], rows[3], rows[5]]

    assert problem(subset, subset=True) is None
    assert problem([rows[0], rows[3], rows[2]], subset=True) == ("reordered", 3)
    edited = ChainRow(entry={**rows[3].entry, "tenant": "x"}, prev_hash=rows[3].prev_hash, hash=rows[3].hash)
    assert problem([rows[0], rows[2], edited], subset=True) == ("edited", 4)


def test_keyed_entries_after_unkeyed_ones_are_fine_but_not_the_reverse() -> None:
    plain = build(2, None)
    keyed = build(2, KEY, first=3, prev=plain[-1].hash)

    result = verify_rows([*plain, *keyed], KEY)
    assert result.ok
    assert result.unkeyed == 2
    downgraded = build(1, None, first=5, prev=keyed[-1].hash)
    assert problem([*plain, *keyed, *downgraded]) == ("edited", 5)
    assert problem(keyed, None, start=None) == ("unverifiable", 3)


TAMPERING = st.sampled_from(["edit", "delete", "swap", "duplicate", "forge"])


@settings(max_examples=150, deadline=None)
@given(count=st.integers(3, 12), where=st.integers(0, 11), how=TAMPERING, keyed=st.booleans())
def test_any_single_tampering_before_the_tail_is_found(count: int, where: int, how: str, keyed: bool) -> None:
    key = KEY if keyed else None
    rows = build(count, key)
    at_ = min(where, count - 2)  # not the last entry: cutting the tail needs an anchor
    target = rows[at_]
    if how == "edit":
        rows[at_] = ChainRow(entry={**target.entry, "n": -1}, prev_hash=target.prev_hash, hash=target.hash)
    elif how == "delete":
        del rows[at_]
    elif how == "swap":
        rows[at_], rows[at_ + 1] = rows[at_ + 1], rows[at_]
    elif how == "duplicate":
        rows.insert(at_ + 1, target)
    else:  # a new entry linked in after ``target``, hashed without the key
        forged = {**target.entry, "seq": target.entry["seq"] + 1, "n": -1}
        rows.insert(
            at_ + 1, ChainRow(entry=forged, prev_hash=target.hash, hash=entry_hash(target.hash, forged, None))
        )

    found = problem(rows, key)

    assert found is not None
    assert found[1] <= at_ + 2


def test_entry_times_are_rfc_3339_utc_with_microseconds() -> None:
    moments = [
        0.0,
        1.5,
        0.0000005,
        0.0000015,
        at("2026-11-27", 11) + 0.123456789,
        253402300799.0,
        -1e10,
        -4e10,
    ]
    for moment in moments:
        expected = datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        assert format_time(moment) == expected
    assert format_time(at("2026-11-27", 11)) == "2026-11-27T11:00:00.000000Z"


def test_entry_ids_are_random_hex() -> None:
    ids = {audit_body(record())["entry_id"] for _ in range(100)}
    assert len(ids) == 100
    assert all(len(entry_id) == 32 and int(entry_id, 16) >= 0 for entry_id in ids)


def test_a_float_is_found_wherever_it_hides() -> None:
    class Cost(float):
        pass

    for entry in ({"a": [1, {"b": 0.5}]}, {"a": Cost(1)}, {"a": {"b": [True, None, "x", [2.0]]}}):
        with pytest.raises(TypeError, match="no floats"):
            canonical(entry)
