"""Classic ML model servers behind the Open Inference Protocol v2 (KServe, Triton, MLServer).

The inference body passes through unchanged; only the model name is mapped from the alias the
client used to the name the model server knows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote

from interlace.core.errors import UpstreamProtocolError
from interlace.providers._base import HttpProvider
from interlace.providers.inference_v2.errors import inference_v2_error

if TYPE_CHECKING:
    from interlace.config.schema import DeploymentConfig
    from interlace.core.operations import InferRequest, Operation

__all__ = ["InferenceV2Provider"]


class InferenceV2Provider(HttpProvider):
    kind: ClassVar[str] = "inference_v2"
    operations: ClassVar[frozenset[Operation]] = frozenset({"infer"})

    def __init__(self, *, name: str, deployment: DeploymentConfig) -> None:
        headers = {}
        if deployment.api_key is not None:
            headers["authorization"] = f"Bearer {deployment.api_key.get_secret_value()}"
        super().__init__(
            name=name,
            deployment=deployment,
            base_url=deployment.base_url or "",
            headers=headers,
            error_mapper=inference_v2_error,
        )

    def _path(self, request: InferRequest, suffix: str) -> str:
        path = f"/v2/models/{quote(self.upstream_model, safe='')}"
        if request.version:
            path += f"/versions/{quote(request.version, safe='')}"
        return path + suffix

    async def infer(self, request: InferRequest) -> dict[str, Any]:
        answer = await self.client.request_json(
            "POST", self._path(request, "/infer"), request.body, deadline=request.deadline
        )
        return self._object(answer, "inference")

    async def model_metadata(self, request: InferRequest) -> dict[str, Any]:
        answer = await self.client.request_json("GET", self._path(request, ""), deadline=request.deadline)
        return self._object(answer, "model metadata")

    def _object(self, answer: Any, what: str) -> dict[str, Any]:
        if not isinstance(answer, dict):
            raise UpstreamProtocolError(
                f"Deployment '{self.name}' answered {what} that is not a JSON object."
            )
        return answer
