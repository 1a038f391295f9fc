"""``GET /v1/files`` and ``DELETE /v1/files/{id}`` through the official ``openai`` SDK, on SQLite and
on Postgres: purpose filter, pages, order, and a file an unfinished batch reads kept (409)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import orjson
import pytest
from tests.conftest import GatewayFactory

from interlace.store.database import default_database_url

# no worker: a batch stays in progress until it is cancelled
CONFIG = """
models:
  echo:
    deployments:
      - provider: fake
        model: echo
state:
  database_url: "{url}"
jobs:
  worker: {{enabled: false}}
"""


@pytest.fixture
def gateway_url(make_gateway: GatewayFactory, state_url: str) -> str:
    return make_gateway(CONFIG.format(url=state_url)).url


@pytest.fixture
def client(gateway_url: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{gateway_url}/v1", api_key="unused", max_retries=0) as client:
        yield client


def _batch_file() -> bytes:
    body = {"model": "echo", "messages": [{"role": "user", "content": "hi"}]}
    line = {"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": body}
    return orjson.dumps(line) + b"\n"


def test_list_filters_by_purpose_and_pages(client: openai.OpenAI, gateway_url: str) -> None:
    uploaded = [
        client.files.create(file=(f"notes-{i}.txt", f"note {i}".encode()), purpose="user_data")
        for i in range(5)
    ]
    batch_input = client.files.create(file=("in.jsonl", _batch_file()), purpose="batch")
    everything = list(client.files.list())
    assert {f.id for f in everything} == {f.id for f in uploaded} | {batch_input.id}
    assert [f.created_at for f in everything] == sorted((f.created_at for f in everything), reverse=True)
    notes = client.files.list(purpose="user_data")
    assert {f.id for f in notes} == {f.id for f in uploaded}
    assert {f.purpose for f in notes} == {"user_data"}
    # pages of two, followed by the SDK through `after` until has_more is false
    first = client.files.list(purpose="user_data", limit=2)
    assert len(first.data) == 2
    assert first.has_next_page()
    paged = [f.id for f in client.files.list(purpose="user_data", limit=2)]
    assert paged == [f.id for f in notes.data]
    oldest_first = [f.id for f in client.files.list(purpose="user_data", order="asc")]
    assert oldest_first == paged[::-1]
    assert list(client.files.list(purpose="batch_output")) == []
    with httpx.Client(base_url=gateway_url) as http:
        for query, param in [("limit=0", "limit"), ("order=up", "order"), ("after=file-missing", "after")]:
            reply = http.get(f"/v1/files?{query}")
            assert reply.status_code == 400, reply.text
            assert reply.json()["error"]["param"] == param


def test_delete_a_file_and_keep_one_an_unfinished_batch_reads(client: openai.OpenAI) -> None:
    note = client.files.create(file=("note.txt", b"hello"), purpose="user_data")
    deleted = client.files.delete(note.id)
    assert (deleted.id, deleted.object, deleted.deleted) == (note.id, "file", True)
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(note.id)
    with pytest.raises(openai.NotFoundError):
        client.files.delete(note.id)
    assert note.id not in {f.id for f in client.files.list()}

    batch_input = client.files.create(file=("in.jsonl", _batch_file()), purpose="batch")
    batch = client.batches.create(
        input_file_id=batch_input.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    with pytest.raises(openai.ConflictError) as refused:
        client.files.delete(batch_input.id)
    assert refused.value.code == "file_in_use"
    assert client.files.retrieve(batch_input.id).id == batch_input.id
    assert client.batches.cancel(batch.id).status == "cancelled"
    assert client.files.delete(batch_input.id).deleted is True


def test_a_tenant_lists_and_deletes_only_its_own_files(make_gateway: GatewayFactory, tmp_path: Path) -> None:
    master = "sk-master-0123456789abcdef0123456789"
    config = CONFIG.format(url=default_database_url(str(tmp_path / "db")))
    gateway = make_gateway(config + "auth:\n  master_key: ${MASTER}\n", env={"MASTER": master})

    def client_of(tenant: str) -> openai.OpenAI:
        created = httpx.post(
            f"{gateway.url}/admin/v1/keys",
            json={"name": "k", "tenant": tenant},
            headers={"authorization": f"Bearer {master}"},
        )
        assert created.status_code == 201, created.text
        return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=created.json()["key"], max_retries=0)

    with client_of("acme") as acme, client_of("globex") as globex:
        mine = acme.files.create(file=("a.txt", b"acme"), purpose="user_data")
        theirs = globex.files.create(file=("g.txt", b"globex"), purpose="user_data")
        assert [f.id for f in acme.files.list()] == [mine.id]
        assert [f.id for f in globex.files.list()] == [theirs.id]
        with pytest.raises(openai.NotFoundError):
            acme.files.delete(theirs.id)
        with pytest.raises(openai.BadRequestError):  # another tenant's id is no cursor either
            acme.files.list(after=theirs.id)
        assert globex.files.retrieve(theirs.id).id == theirs.id
