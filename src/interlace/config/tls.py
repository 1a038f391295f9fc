"""TLS settings: the gateway's own HTTPS listener (``server.tls``) and each upstream's (``tls``).

Serving HTTPS::

    server:
      tls: {cert_file: certs/gateway.pem, key_file: certs/gateway.key}
      # client_ca_file: certs/clients-ca.pem   → clients must present a certificate (mTLS)

Upstream certificates are always verified against the system trust store; a deployment may add a
private CA, present a client certificate (mTLS), or — for that one deployment only, never globally —
turn verification off::

    deployments:
      - provider: openai
        base_url: https://llm.internal:8443/v1
        tls: {ca_file: certs/internal-ca.pem, client_cert_file: certs/gw.pem, client_key_file: certs/gw.key}

Relative paths are relative to the working directory; every file must exist when the configuration
is loaded, so a typo is a configuration error at ``file:line``, not a failed handshake later.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator, model_validator

from interlace.config._base import Strict

__all__ = ["ServerTLSConfig", "UpstreamTLSConfig"]


def _existing(path: str | None) -> str | None:
    if path is not None and not Path(path).is_file():
        msg = f"no such file '{path}' (relative paths are relative to the working directory)"
        raise ValueError(msg)
    return path


class ServerTLSConfig(Strict):
    """Serve HTTPS with this certificate; with ``client_ca_file``, require client certificates."""

    cert_file: str = Field(description="PEM certificate chain, the server's certificate first.")
    key_file: str = Field(description="PEM private key of the certificate.")
    client_ca_file: str | None = Field(
        None, description="PEM CA bundle; when set, clients must present a certificate it signed (mTLS)."
    )

    @field_validator("cert_file", "key_file", "client_ca_file")
    @classmethod
    def _files(cls, path: str | None) -> str | None:
        return _existing(path)


class UpstreamTLSConfig(Strict):
    """How the gateway checks one upstream's certificate, and the certificate it presents to it."""

    verify: bool = Field(
        default=True,
        description="Verify the upstream's certificate and host name. Only ever false for one deployment.",
    )
    ca_file: str | None = Field(
        None, description="PEM CA bundle trusted in addition to the system store (a private CA)."
    )
    client_cert_file: str | None = Field(
        None,
        description="PEM client certificate presented to the upstream (mTLS), with its key unless "
        "client_key_file is given.",
    )
    client_key_file: str | None = Field(None, description="PEM private key of client_cert_file.")

    @field_validator("ca_file", "client_cert_file", "client_key_file")
    @classmethod
    def _files(cls, path: str | None) -> str | None:
        return _existing(path)

    @model_validator(mode="after")
    def _pairs(self) -> UpstreamTLSConfig:
        if self.client_key_file is not None and self.client_cert_file is None:
            msg = "client_key_file is set without client_cert_file — add the certificate it belongs to"
            raise ValueError(msg)
        if not self.verify and self.ca_file is not None:
            msg = "ca_file has no effect with verify: false — remove one of them"
            raise ValueError(msg)
        return self
