"""Secrets never leave the gateway: not in logs, errors, headers, metrics, stored events or the audit log.

A real ``interlace serve`` process runs with known secrets — the master key, the admin key, the audit
HMAC key, a virtual key's secret made through the admin API, an OIDC bearer JWT, and an upstream API
key, which a misbehaving upstream even echoes back in its error messages — and is sent successful and
failing requests (a wrong key, no key, a forged token, upstream 401 and 500, an in-stream error event,
bad JSON, an unknown model, a stream, a tenant's key and token refused by its residency rule).
Then every byte it produced is scanned for every secret: its stdout and stderr, each response's
status line, headers and body, ``GET /metrics``, every file of its state directory (the event log's
database and spool) and the audit export.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from interlace.testing import Fault, OpenAIUpstream, UpstreamServer
from interlace.testing.oidc_issuer import OidcIssuer

HELLO = [{"role": "user", "content": "hello secrets"}]


@dataclass
class Secrets:
    master: str = field(default_factory=lambda: "sk-master-" + secrets.token_hex(16))
    upstream: str = field(default_factory=lambda: "sk-upstream-" + secrets.token_hex(16))
    admin: str = field(default_factory=lambda: "sk-admin-" + secrets.token_hex(16))
    audit_hmac: str = field(default_factory=lambda: "audit-hmac-" + secrets.token_hex(16))
    wrong: str = field(default_factory=lambda: "sk-wrong-" + secrets.token_hex(16))
    """A key a client presents that is not valid: echoing it back is a leak too."""
    virtual: str = ""
    """The secret of a virtual key, known once the admin API created it."""
    jwt: str = ""
    """A bearer token of the test issuer (its signature is the secret part)."""

    def all(self) -> dict[str, str]:
        known = {
            "master key": self.master,
            "admin key": self.admin,
            "audit hmac_key": self.audit_hmac,
            "upstream api_key": self.upstream,
            "presented wrong key": self.wrong,
        }
        if self.virtual:
            known["virtual key secret"] = self.virtual
        if self.jwt:
            known["bearer JWT"] = self.jwt
        return known


@dataclass
class Capture:
    """Everything the gateway said, by where it was said."""

    texts: dict[str, str] = field(default_factory=dict)

    def add_response(self, name: str, reply: httpx.Response) -> None:
        headers = "\n".join(f"{k}: {v}" for k, v in reply.headers.items())
        self.texts[name] = f"{reply.status_code} {reply.reason_phrase}\n{headers}\n\n{reply.text}"

    def leaks(self, known: dict[str, str]) -> list[str]:
        found = []
        for where, text in self.texts.items():
            for what, secret in known.items():
                # the whole secret, and its random tail alone (a truncated or re-prefixed echo)
                if secret in text or secret[-24:] in text:
                    found.append(f"{what} in {where}")
        return found


@pytest.fixture(scope="module")
def idp() -> Iterator[OidcIssuer]:
    with OidcIssuer() as issuer:
        yield issuer


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[UpstreamServer, Secrets]]:
    del tmp_path_factory
    known = Secrets()
    with UpstreamServer(OpenAIUpstream(api_key=known.upstream)) as server:
        yield server, known


def _config(state: Path, server: UpstreamServer, idp: OidcIssuer) -> str:
    return f"""
state:
  dir: {state}
auth:
  master_key: ${{INTERLACE_MASTER_KEY}}
  admin_key: ${{INTERLACE_ADMIN_KEY}}
  oidc:
    issuers:
      - {{issuer: "{idp.issuer}", audience: {idp.audience}, claims: {{tenant_claim: org_id}}}}
audit:
  hmac_key: ${{INTERLACE_AUDIT_KEY}}
tenants:
  acme:
    residency: {{regions: [eu-west-1]}}
observability:
  logs: {{format: json, request_log: true}}
models:
  gpt:
    retry: {{max_attempts: 1}}
    breaker: {{enabled: false}}
    deployments:
      - provider: openai
        model: echo
        base_url: {server.url}/v1
        api_key: ${{UPSTREAM_API_KEY}}
        region: eu-west-1
        timeouts: {{connect: 2, first_byte: 5, total: 10}}
  gpt-us:
    deployments:
      - provider: openai
        model: echo
        base_url: {server.url}/v1
        api_key: ${{UPSTREAM_API_KEY}}
        region: us-east-1
"""


def _wait_for_url(stderr: Path, process: subprocess.Popen[bytes]) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        text = stderr.read_text(errors="replace")
        if "listening on " in text:
            return text.split("listening on ")[1].split()[0]
        if process.poll() is not None:
            pytest.fail(f"interlace serve exited {process.returncode}: {text}")
        time.sleep(0.05)
    pytest.fail("interlace serve did not start within 60 s")


def _exercise(url: str, server: UpstreamServer, idp: OidcIssuer, known: Secrets, capture: Capture) -> None:
    good = {"authorization": f"Bearer {known.master}"}
    chat = {"model": "gpt", "messages": HELLO}
    with httpx.Client(base_url=url, timeout=20) as client:
        for _ in range(100):
            try:
                if client.get("/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        ok = client.post("/v1/chat/completions", json=chat, headers=good)
        assert ok.status_code == 200, ok.text
        capture.add_response("chat ok", ok)
        with client.stream("POST", "/v1/chat/completions", json={**chat, "stream": True}, headers=good) as s:
            s.read()
            capture.add_response("stream ok", s)
        anthropic = client.post(
            "/v1/messages",
            json={"model": "gpt", "max_tokens": 20, "messages": HELLO},
            headers={"x-api-key": known.master, "anthropic-version": "2023-06-01"},
        )
        assert anthropic.status_code == 200, anthropic.text
        capture.add_response("messages ok", anthropic)

        wrong = client.post(
            "/v1/chat/completions", json=chat, headers={"authorization": f"Bearer {known.wrong}"}
        )
        assert wrong.status_code == 401
        capture.add_response("wrong key", wrong)
        wrong_anthropic = client.post("/v1/messages", json=chat, headers={"x-api-key": known.wrong})
        assert wrong_anthropic.status_code == 401
        capture.add_response("wrong key (anthropic)", wrong_anthropic)
        missing = client.post("/v1/chat/completions", json=chat)
        assert missing.status_code == 401
        capture.add_response("no key", missing)

        # a misbehaving upstream echoes the credential it was sent
        server.script.push(
            Fault(kind="status", status=401, message=f"Incorrect API key provided: {known.upstream}.")
        )
        rejected = client.post("/v1/chat/completions", json=chat, headers=good)
        assert rejected.status_code == 502, rejected.text
        assert "[redacted]" in rejected.text
        capture.add_response("upstream 401", rejected)
        server.script.push(
            Fault(
                kind="status",
                status=500,
                message=f"proxy failed for 'Authorization: Bearer {known.upstream}'",
            )
        )
        failed = client.post("/v1/chat/completions", json=chat, headers=good)
        assert failed.status_code == 502, failed.text
        capture.add_response("upstream 500", failed)
        server.script.push(Fault(kind="error_after_first_chunk", message=f"overloaded, key {known.upstream}"))
        with client.stream("POST", "/v1/chat/completions", json={**chat, "stream": True}, headers=good) as s:
            s.read()
            capture.add_response("stream error event", s)
        server.script.push(Fault(kind="status", status=500, message=f"stream broke, key {known.upstream}"))
        with client.stream("POST", "/v1/chat/completions", json={**chat, "stream": True}, headers=good) as s:
            s.read()
            capture.add_response("stream upstream 500", s)

        bad_json = client.post(
            "/v1/chat/completions", content=b'{"model": "gpt", "messages": [', headers=good
        )
        assert bad_json.status_code == 400
        capture.add_response("bad JSON", bad_json)
        unknown = client.post("/v1/chat/completions", json={**chat, "model": "nope"}, headers=good)
        assert unknown.status_code == 404
        capture.add_response("unknown model", unknown)
        capture.add_response("models", client.get("/v1/models", headers=good))
        _virtual_key(client, known, capture)
        _bearer_token(client, idp, known, capture)
        metrics = client.get("/metrics")
        assert metrics.status_code == 200
        assert "interlace" in metrics.text
        capture.add_response("GET /metrics", metrics)


def _virtual_key(client: httpx.Client, known: Secrets, capture: Capture) -> None:
    """A tenant's virtual key, made with the admin key: used, refused by residency, listed, revoked."""
    admin = {"authorization": f"Bearer {known.admin}"}
    created = client.post("/admin/v1/keys", json={"name": "leak test", "tenant": "acme"}, headers=admin)
    assert created.status_code in {200, 201}, created.text
    known.virtual = created.json()["key"]
    key_id = created.json()["id"]
    # the key is its public id and a secret part; the id may be logged, the secret never (the scan
    # looks for the whole key and for its last 24 characters alone)
    assert len(known.virtual.removeprefix(key_id)) > 24
    # the one answer that must carry the secret (this creation) is left out of the scan
    tenant = {"authorization": f"Bearer {known.virtual}"}
    chat = {"model": "gpt", "messages": HELLO}
    served = client.post("/v1/chat/completions", json=chat, headers=tenant)
    assert served.status_code == 200, served.text
    capture.add_response("virtual key chat", served)
    refused = client.post("/v1/chat/completions", json={**chat, "model": "gpt-us"}, headers=tenant)
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["code"] == "residency_denied"
    capture.add_response("virtual key residency 403", refused)
    capture.add_response("admin list", client.get("/admin/v1/keys", headers=admin))
    capture.add_response("admin show", client.get(f"/admin/v1/keys/{key_id}", headers=admin))
    wrong_admin = client.get("/admin/v1/keys", headers={"authorization": f"Bearer {known.wrong}"})
    assert wrong_admin.status_code == 401
    capture.add_response("admin with a wrong key", wrong_admin)
    as_tenant = client.get("/admin/v1/keys", headers=tenant)
    assert as_tenant.status_code == 403
    capture.add_response("admin as a tenant", as_tenant)
    revoked = client.delete(f"/admin/v1/keys/{key_id}", headers=admin)
    assert revoked.status_code in {200, 204}, revoked.text
    capture.add_response("admin revoke", revoked)
    after = client.post("/v1/chat/completions", json=chat, headers=tenant)
    assert after.status_code == 401
    capture.add_response("revoked key", after)


def _bearer_token(client: httpx.Client, idp: OidcIssuer, known: Secrets, capture: Capture) -> None:
    """A tenant's OIDC token: served, refused by residency; a token with a broken signature: 401."""
    known.jwt = idp.token(sub="alice", org_id="acme")
    bearer = {"authorization": f"Bearer {known.jwt}"}
    chat = {"model": "gpt", "messages": HELLO}
    served = client.post("/v1/chat/completions", json=chat, headers=bearer)
    assert served.status_code == 200, served.text
    capture.add_response("JWT chat", served)
    refused = client.post("/v1/chat/completions", json={**chat, "model": "gpt-us"}, headers=bearer)
    assert refused.status_code == 403, refused.text
    capture.add_response("JWT residency 403", refused)
    head, payload, signature = known.jwt.split(".")
    forged = f"{head}.{payload}.{signature[::-1]}"
    rejected = client.post("/v1/chat/completions", json=chat, headers={"authorization": f"Bearer {forged}"})
    assert rejected.status_code == 401
    capture.add_response("forged JWT", rejected)
    assert signature[::-1][-24:] not in rejected.text  # the presented token is not echoed either


def test_no_secret_appears_anywhere(
    tmp_path: Path, upstream: tuple[UpstreamServer, Secrets], idp: OidcIssuer
) -> None:
    server, known = upstream
    state = tmp_path / "state"
    config = tmp_path / "interlace.yaml"
    config.write_text(_config(state, server, idp))
    env = {
        **os.environ,
        "COLUMNS": "200",
        "INTERLACE_MASTER_KEY": known.master,
        "INTERLACE_ADMIN_KEY": known.admin,
        "INTERLACE_AUDIT_KEY": known.audit_hmac,
        "UPSTREAM_API_KEY": known.upstream,
    }
    stdout, stderr = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    capture = Capture()
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "interlace", "serve", "--config", str(config), "--port", "0"],
            stdout=out,
            stderr=err,
            env=env,
        )
        try:
            url = _wait_for_url(stderr, process)
            _exercise(url, server, idp, known, capture)
        finally:
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=30) == 0
    capture.texts["stdout"] = stdout.read_text(errors="replace")
    capture.texts["stderr"] = stderr.read_text(errors="replace")
    assert capture.texts["stderr"].count('"status":502') == 4  # the request log was written
    stored = [path for path in state.rglob("*") if path.is_file()]
    assert stored, "the gateway stored nothing: the event log is not being scanned"
    for path in stored:
        capture.texts[f"state file {path.relative_to(tmp_path)}"] = path.read_bytes().decode(errors="replace")
    exported = subprocess.run(
        [sys.executable, "-m", "interlace", "audit", "export", "--config", str(config)],
        capture_output=True,
        env=env,
        check=False,
    )
    assert exported.returncode == 0, exported.stderr.decode(errors="replace")
    capture.texts["audit export"] = exported.stdout.decode(errors="replace")
    capture.texts["audit export (stderr)"] = exported.stderr.decode(errors="replace")
    audit = capture.texts["audit export"]
    assert audit.count("\n") >= 10  # one entry per request
    assert '"residency:acme"' in audit
    assert audit.count('"residency:denied acme gpt-us"') == 2  # the virtual key's and the token's

    assert capture.leaks(known.all()) == []
    # the scan is not vacuous: the upstream did receive the key, and the log did record the failures
    assert server.requests[0].headers["authorization"] == f"Bearer {known.upstream}"
    assert "upstream_misconfigured" in capture.texts["stderr"] + capture.texts["stdout"]
