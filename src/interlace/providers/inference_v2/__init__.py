"""Open Inference Protocol v2 upstreams (KServe, Triton, MLServer)."""

from interlace.providers.inference_v2.errors import inference_v2_error
from interlace.providers.inference_v2.provider import InferenceV2Provider

__all__ = ["InferenceV2Provider", "inference_v2_error"]
