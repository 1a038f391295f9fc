"""TLS end to end, with certificates from a throwaway CA (trustme).

- The gateway serves HTTPS (``server.tls``), and requires client certificates with ``client_ca_file``.
- Upstream certificates are verified: a private CA is trusted only through the deployment's
  ``tls.ca_file``; without it the request is a 502 that names TLS verification.
- An upstream that requires a client certificate gets the deployment's ``client_cert_file``.
- Missing or mismatched files are configuration errors at their file:line.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
import pytest
import trustme
from tests.conftest import GatewayFactory

from interlace.config import parse_config
from interlace.config.tls import UpstreamTLSConfig
from interlace.core.errors import ConfigError
from interlace.providers._http import upstream_ssl_context
from interlace.testing import UpstreamServer

HELLO = [{"role": "user", "content": "over TLS"}]


@dataclass(frozen=True)
class Pki:
    ca: trustme.CA
    ca_file: str
    server_cert: str
    server_key: str
    client_cert: str
    client_key: str
    other_ca_file: str

    def client_context(self, *, with_cert: bool = False) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.ca_file)
        if with_cert:
            context.load_cert_chain(self.client_cert, self.client_key)
        return context


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    root = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    client = ca.issue_cert("gateway.client.test")
    paths = {
        "ca.pem": ca.cert_pem.bytes(),
        "server.pem": b"".join(blob.bytes() for blob in server.cert_chain_pems),
        "server.key": server.private_key_pem.bytes(),
        "client.pem": b"".join(blob.bytes() for blob in client.cert_chain_pems),
        "client.key": client.private_key_pem.bytes(),
        "other-ca.pem": trustme.CA().cert_pem.bytes(),
    }
    for name, data in paths.items():
        (root / name).write_bytes(data)
    return Pki(
        ca=ca,
        ca_file=str(root / "ca.pem"),
        server_cert=str(root / "server.pem"),
        server_key=str(root / "server.key"),
        client_cert=str(root / "client.pem"),
        client_key=str(root / "client.key"),
        other_ca_file=str(root / "other-ca.pem"),
    )


@pytest.fixture(scope="module")
def https_upstream(pki: Pki) -> Iterator[UpstreamServer]:
    with UpstreamServer("openai", certfile=pki.server_cert, keyfile=pki.server_key) as server:
        yield server


@pytest.fixture(scope="module")
def mtls_upstream(pki: Pki) -> Iterator[UpstreamServer]:
    with UpstreamServer(
        "openai", certfile=pki.server_cert, keyfile=pki.server_key, client_ca_file=pki.ca_file
    ) as server:
        yield server


def upstream_yaml(server: UpstreamServer, tls: str = "") -> str:
    return (
        "models:\n  remote:\n    retry: {max_attempts: 1}\n    deployments:\n"
        f"      - provider: openai\n        model: echo\n        base_url: {server.url}/v1\n"
        "        timeouts: {connect: 2, first_byte: 5, total: 10}\n"
        + (f"        tls: {tls}\n" if tls else "")
    )


def chat(url: str, context: ssl.SSLContext | bool = True, model: str = "remote") -> httpx.Response:
    with httpx.Client(verify=context, timeout=15) as client:
        return client.post(f"{url}/v1/chat/completions", json={"model": model, "messages": HELLO})


def test_gateway_serves_https_to_the_openai_sdk(make_gateway: GatewayFactory, pki: Pki) -> None:
    gateway = make_gateway(
        f"server:\n  tls: {{cert_file: {pki.server_cert}, key_file: {pki.server_key}}}\n"
        "models:\n  echo:\n    deployments: [{provider: fake, model: echo}]\n"
    )
    assert gateway.url.startswith("https://127.0.0.1:")
    with openai.DefaultHttpxClient(verify=pki.client_context()) as http:
        client = openai.OpenAI(
            base_url=f"{gateway.url}/v1", api_key="unused", http_client=http, max_retries=0
        )
        answer = client.chat.completions.create(model="echo", messages=HELLO)  # type: ignore[arg-type]
    assert answer.choices[0].message.content == "echo: over TLS"
    # a client that does not trust the test CA refuses the gateway's certificate
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        chat(gateway.url, model="echo")


def test_gateway_with_client_ca_requires_a_client_certificate(make_gateway: GatewayFactory, pki: Pki) -> None:
    gateway = make_gateway(
        f"server:\n  tls: {{cert_file: {pki.server_cert}, key_file: {pki.server_key}, "
        f"client_ca_file: {pki.ca_file}}}\n"
        "models:\n  echo:\n    deployments: [{provider: fake, model: echo}]\n"
    )
    assert chat(gateway.url, pki.client_context(with_cert=True), model="echo").status_code == 200
    with pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)):
        chat(gateway.url, pki.client_context(), model="echo")


def test_upstream_with_a_private_ca_is_verified_with_ca_file(
    make_gateway: GatewayFactory, pki: Pki, https_upstream: UpstreamServer
) -> None:
    gateway = make_gateway(upstream_yaml(https_upstream, f"{{ca_file: {pki.ca_file}}}"))
    reply = chat(gateway.url)
    assert reply.status_code == 200, reply.text
    assert reply.json()["choices"][0]["message"]["content"] == "echo: over TLS"
    assert https_upstream.requests[-1].path == "/v1/chat/completions"


def test_upstream_certificate_is_verified_by_default(
    make_gateway: GatewayFactory, pki: Pki, https_upstream: UpstreamServer
) -> None:
    before = len(https_upstream.requests)
    for tls in ("", f"{{ca_file: {pki.other_ca_file}}}"):  # no CA, then the wrong CA
        gateway = make_gateway(upstream_yaml(https_upstream, tls))
        reply = chat(gateway.url)
        assert reply.status_code == 502, reply.text
        error = reply.json()["error"]
        assert error["code"] == "upstream_tls_error"
        assert error["message"].startswith("TLS verification of deployment 'remote/0' at https://127.0.0.1:")
        assert "certificate verify failed" in error["message"]
        assert "tls.ca_file" in error["message"]
    assert len(https_upstream.requests) == before  # nothing was sent to an unverified server


def test_verification_is_off_only_where_a_deployment_says_so(
    make_gateway: GatewayFactory, https_upstream: UpstreamServer
) -> None:
    gateway = make_gateway(upstream_yaml(https_upstream, "{verify: false}"))
    assert chat(gateway.url).status_code == 200


def test_upstream_requiring_a_client_certificate(
    make_gateway: GatewayFactory, pki: Pki, mtls_upstream: UpstreamServer
) -> None:
    with_cert = make_gateway(
        upstream_yaml(
            mtls_upstream,
            f"{{ca_file: {pki.ca_file}, client_cert_file: {pki.client_cert}, "
            f"client_key_file: {pki.client_key}}}",
        )
    )
    reply = chat(with_cert.url)
    assert reply.status_code == 200, reply.text
    without = make_gateway(upstream_yaml(mtls_upstream, f"{{ca_file: {pki.ca_file}}}"))
    reply = chat(without.url)
    assert reply.status_code == 502, reply.text
    error = reply.json()["error"]
    assert error["type"] == "upstream_error"
    assert "remote/0" in error["message"]
    assert (
        "if it requires a client certificate, set the deployment's tls.client_cert_file" in error["message"]
    )


def test_missing_files_and_a_key_without_certificate_are_errors_at_their_line(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.pem")
    text = (
        "server:\n"
        f"  tls: {{cert_file: {missing}, key_file: {missing}}}\n"
        "models:\n"
        "  m:\n"
        "    deployments:\n"
        "      - provider: openai\n"
        "        model: x\n"
        "        base_url: https://127.0.0.1:1/v1\n"
        "        tls:\n"
        f"          client_key_file: {missing}\n"
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(text, filename="tls.yaml", environ={})
    message = str(caught.value)
    assert f"tls.yaml:2: 'server.tls.cert_file': no such file '{missing}'" in message
    assert f"tls.yaml:2: 'server.tls.key_file': no such file '{missing}'" in message
    assert "tls.yaml:10: 'models.m.deployments[0].tls.client_key_file': no such file" in message


def test_key_without_certificate_names_the_fix(tmp_path: Path, pki: Pki) -> None:
    text = (
        "models:\n  m:\n    deployments:\n      - provider: openai\n        model: x\n"
        f"        tls: {{client_key_file: {pki.client_key}}}\n"
    )
    with pytest.raises(ConfigError, match=r"tls\.yaml:6: .*client_key_file is set without client_cert_file"):
        parse_config(text, filename="tls.yaml", environ={})


def test_a_key_that_does_not_match_is_a_config_error(pki: Pki) -> None:
    tls = UpstreamTLSConfig(client_cert_file=pki.client_cert, client_key_file=pki.server_key)
    with pytest.raises(ConfigError, match=r"deployment 'm/0': cannot load its TLS files"):
        upstream_ssl_context(tls, name="m/0")
    context = upstream_ssl_context(UpstreamTLSConfig(ca_file=pki.ca_file), name="m/0")
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
