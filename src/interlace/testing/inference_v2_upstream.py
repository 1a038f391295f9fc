"""An Open Inference Protocol v2 (KServe / Triton) fake upstream serving a deterministic toy model.

An honest fake of the upstream boundary (see :mod:`interlace.testing.faults`) speaking the v2 REST
protocol: ``GET /v2`` (server metadata), ``GET /v2/health/live`` and ``/v2/health/ready`` (the status
code is the answer and the body is empty, as the protocol says), ``GET /v2/models/{name}[/versions/{v}]``
(metadata), ``GET .../ready`` and ``POST .../infer``. Errors are ``{"error": "<message>"}``: 404 for an
unknown model or version, 400 for a malformed request, and a not-ready server or model (``ready =
False``) answers 400 to readiness checks and 503 to inference.

The toy model sums: for each input tensor (numeric datatype, ``data`` flat or nested, its element count
matching ``shape``) the output ``OUTPUT0`` (``FP32``, shape ``[number of inputs]``) holds the sum of its
data, rounded to float32. The request ``id`` is echoed. A model name that is a ``fault:`` directive
serves the same toy model, so faults can be chosen through the path.
"""

from __future__ import annotations

import math
import re
import struct
from typing import TYPE_CHECKING, Any, Final

from interlace.testing.exchange import Exchange, RejectionError, Route, RouteSpec, UpstreamApp, match_route
from interlace.testing.faults import DIRECTIVE_PREFIX, NORMAL, Fault

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["InferenceV2Upstream"]

_NUMERIC: Final = frozenset(
    {
        "BOOL",
        "UINT8",
        "UINT16",
        "UINT32",
        "UINT64",
        "INT8",
        "INT16",
        "INT32",
        "INT64",
        "FP16",
        "FP32",
        "FP64",
        "BF16",
    }
)
_MODEL: Final = r"/v2/models/(?P<model>[^/]+)(?:/versions/(?P<version>[^/]+))?"


def _flatten(data: Any) -> list[Any]:
    if not isinstance(data, list):
        return [data]
    flat: list[Any] = []
    for item in data:
        flat.extend(_flatten(item))
    return flat


def _float32(value: float) -> float:
    return float(struct.unpack("<f", struct.pack("<f", value))[0])


class InferenceV2Upstream(UpstreamApp):
    """The v2 fake. ``models`` are served (version ``"1"``); set ``ready`` to ``False`` to fail readiness."""

    protocol = "inference_v2"

    def __init__(self, *, models: Sequence[str] = ("sum",), default_fault: Fault = NORMAL) -> None:
        super().__init__(default_fault=default_fault)
        self.models = tuple(models)
        #: Whether the server and its models report ready (thread-safe to flip from a test).
        self.ready = True
        self._routes: tuple[RouteSpec, ...] = (
            ("GET", re.compile(r"/v2"), self._server_metadata, False),
            ("GET", re.compile(r"/v2/health/live"), self._live, False),
            ("GET", re.compile(r"/v2/health/ready"), self._server_ready, False),
            ("GET", re.compile(_MODEL), self._model_metadata, False),
            ("GET", re.compile(_MODEL + "/ready"), self._model_ready, False),
            ("POST", re.compile(_MODEL + "/infer"), self._infer, True),
        )

    def route(self, method: str, path: str) -> Route | None:
        return match_route(self._routes, method, path)

    def error_body(self, status: int, code: str | None, message: str | None) -> dict[str, Any]:
        del code  # the v2 error shape has a message only
        return {"error": message or f"upstream failed with status {status}"}

    def _model(self, ex: Exchange) -> str:
        """The model (and version) in the path; 404 when it is not served."""
        name = ex.route.params["model"] if ex.route else ""
        if name not in self.models and not name.startswith(DIRECTIVE_PREFIX):
            raise RejectionError(f"Request for unknown model: '{name}' is not found", status=404)
        version = ex.route.params.get("version") if ex.route else None
        if version is not None and version != "1":
            raise RejectionError(
                f"Request for unknown model: '{name}' version {version} is not found", status=404
            )
        return name

    async def _server_metadata(self, ex: Exchange) -> None:
        await ex.send_json({"name": "interlace-testing", "version": "1", "extensions": []})

    async def _live(self, ex: Exchange) -> None:
        await ex.send_bytes(b"", content_type=b"text/plain")

    async def _server_ready(self, ex: Exchange) -> None:
        await ex.send_bytes(b"", status=200 if self.ready else 400, content_type=b"text/plain")

    async def _model_metadata(self, ex: Exchange) -> None:
        name = self._model(ex)
        tensor = {"datatype": "FP32", "shape": [-1]}
        await ex.send_json(
            {
                "name": name,
                "versions": ["1"],
                "platform": "interlace_testing_sum",
                "inputs": [{"name": "INPUT0", **tensor}],
                "outputs": [{"name": "OUTPUT0", **tensor}],
            }
        )

    async def _model_ready(self, ex: Exchange) -> None:
        self._model(ex)
        await ex.send_bytes(b"", status=200 if self.ready else 400, content_type=b"text/plain")

    async def _infer(self, ex: Exchange) -> None:
        name = self._model(ex)
        if not self.ready:
            raise RejectionError("Model is not ready", status=503)
        if "inference-header-content-length" in ex.record.headers:
            raise RejectionError("the binary tensor data extension is not supported by this server")
        body = ex.body
        sums = _sums(body)
        response: dict[str, Any] = {
            "model_name": name,
            "model_version": "1",
            "outputs": [{"name": "OUTPUT0", "datatype": "FP32", "shape": [len(sums)], "data": sums}],
        }
        if "id" in body:
            response["id"] = body["id"]
        await ex.respond(response)


def _sums(body: Any) -> list[float]:
    """The toy model's output, rejecting a malformed request."""
    if not isinstance(body, dict):
        raise RejectionError("Malformed request: the body must be a JSON object")
    if "id" in body and not isinstance(body["id"], str):
        raise RejectionError("Malformed request: 'id' must be a string")
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise RejectionError("Malformed request: 'inputs' must be a non-empty array of tensors")
    return [_sum(index, tensor) for index, tensor in enumerate(inputs)]


def _sum(index: int, tensor: Any) -> float:
    if not isinstance(tensor, dict) or not isinstance(tensor.get("name"), str):
        raise RejectionError(f"Malformed request: inputs[{index}] needs a 'name'")
    name, shape, datatype = tensor["name"], tensor.get("shape"), tensor.get("datatype")
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise RejectionError(f"Malformed request: input '{name}' needs a 'shape' of non-negative integers")
    if datatype not in _NUMERIC:
        raise RejectionError(
            f"Malformed request: input '{name}' has datatype {datatype!r}; the toy model sums numbers"
        )
    data, size = _flatten(tensor.get("data")), math.prod(shape)
    if len(data) != size:
        raise RejectionError(
            f"Malformed request: input '{name}' has {len(data)} elements; shape {shape} has {size}"
        )
    if not all(isinstance(v, int | float) for v in data):
        raise RejectionError(f"Malformed request: input '{name}' has non-numeric data")
    return _float32(math.fsum(data))
