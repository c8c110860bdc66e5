"""Request and response bodies of the /v1 API (pydantic): validation, and the OpenAPI document.

docs/rest-api.md describes the same contract in prose; both SDKs follow it.
"""

from __future__ import annotations

import re
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator, model_validator

from paitient_common.resources import modeldeployment as md
from paitient_common.resources.shared import QUANTITY_PATTERN

# The ModelDeployment's own rules, so the API refuses what the CRD would.
NAME_PATTERN = md.NAME_PATTERN
MODEL_PATTERN = md.HF_REPO_PATTERN
# What model_name may be, for the OpenAPI document (model_source() checks it and says what is wrong).
MODEL_SOURCE_SHAPES: list[JsonValue] = [
    {"pattern": md.HF_REPO_PATTERN, "maxLength": md.MAX_HF_REPO_LENGTH},
    {"pattern": md.PVC_URI_PATTERN, "maxLength": md.MAX_URI_LENGTH},
    {"pattern": md.S3_URI_PATTERN, "maxLength": md.MAX_URI_LENGTH},
]
URI_SCHEMES = ("pvc://", "s3://")
MAX_PROMPT_BYTES = 1024 * 1024


Status = Literal["pending", "progressing", "ready", "degraded", "failed", "scaled-to-zero"]


class _Body(BaseModel):
    # Strict: the documented JSON types only (no "1" for 1, no 0 for false).
    model_config = ConfigDict(extra="forbid", strict=True)

    @model_validator(mode="before")
    @classmethod
    def _integral_floats(cls, data: Any) -> Any:
        # JSON Schema counts 3.0 as an integer; strict pydantic alone would refuse it.
        if not isinstance(data, dict):
            return data
        ints = {
            n
            for n, f in cls.model_fields.items()
            if f.annotation is int or int in get_args(f.annotation)
        }
        return {
            k: int(v) if k in ints and isinstance(v, float) and v.is_integer() else v
            for k, v in data.items()
        }


def model_source(model_name: str) -> dict[str, str]:
    """``spec.model`` for a ``model_name``: a Hugging Face repo id, or a pvc:// / s3:// URI.

    ValueError with a message that says which form was meant and what is wrong with it.
    """
    if model_name.startswith(URI_SCHEMES):
        problem = md.uri_problem(model_name)
        if problem:
            raise ValueError(problem.replace("model.uri", "model_name"))
        return {"uri": model_name}
    if "://" in model_name:
        raise ValueError(
            "model_name URIs must start with pvc:// or s3:// (or give a Hugging Face repo id)"
        )
    if len(model_name) > md.MAX_HF_REPO_LENGTH or not re.match(MODEL_PATTERN, model_name):
        raise ValueError(
            "model_name must be a Hugging Face repo id like org/name (letters, digits, . _ -; "
            f"at most {md.MAX_HF_REPO_LENGTH} characters), pvc://<claim>/<path> or "
            "s3://<bucket>/<prefix>"
        )
    return {"name": model_name}


class Autoscaling(_Body):
    """Replicas that follow the load (the ModelDeployment's spec.autoscaling; docs/autoscaling.md)."""

    min_replicas: int = Field(
        default=1,
        ge=0,
        le=1000,
        description="Fewest replicas, at most max_replicas; 0: idle deployments stop.",
    )
    max_replicas: int = Field(ge=1, le=1000, description="Most replicas; your tier must hold them.")
    target_metric: Literal["in_flight", "waiting"] = Field(
        default="in_flight",
        description="in_flight: requests in flight per replica; waiting: requests queued in vLLM.",
    )
    target_value: float = Field(default=10.0, gt=0, le=100_000, description="Load per replica.")
    scale_down_delay: str | None = Field(
        default=None, pattern=md.DURATION_PATTERN, description="e.g. 5m (the default) or 90s."
    )
    stabilization_window: str | None = Field(
        default=None, pattern=md.DURATION_PATTERN, description="e.g. 30s (the default)."
    )

    @model_validator(mode="after")
    def _bounds(self) -> Autoscaling:
        if self.min_replicas > self.max_replicas:
            raise ValueError("autoscaling.min_replicas must not be greater than max_replicas")
        return self


class Routing(_Body):
    """How the front door spreads the deployment's requests over its replicas (its
    ``spec.routing``; docs/routing.md). A field left out keeps its value (on create: the
    default)."""

    strategy: md.RoutingStrategy | None = Field(
        default=None,
        description="prefix (the default): the same tenant's prompts that start alike go to "
        "the same replica, within the load bound; least-load; round-robin.",
    )
    prefix_length: int | None = Field(
        default=None,
        ge=1,
        le=md.MAX_PREFIX_LENGTH,
        description=f"prefix: leading characters of the prompt or messages hashed "
        f"(default {md.DEFAULT_PREFIX_LENGTH}).",
    )
    load_bound: float | None = Field(
        default=None,
        ge=1.0,
        le=md.MAX_LOAD_BOUND,
        description=f"prefix: no replica above this factor of the mean load "
        f"(default {md.DEFAULT_LOAD_BOUND}).",
    )

    def to_spec(self) -> dict[str, Any]:
        """The fields given, as ``spec.routing`` names them."""
        given = {
            "strategy": self.strategy,
            "prefixLength": self.prefix_length,
            "loadBound": self.load_bound,
        }
        return {k: v for k, v in given.items() if v is not None}


class CreateDeployment(_Body):
    """POST /v1/deployments."""

    # The CRD's "gpu only with useGpu" and "replicas or autoscaling, not both", said in the
    # schema too, so clients (and a fuzzer) see them.
    model_config = ConfigDict(
        json_schema_extra={
            "allOf": [
                {
                    "if": {"properties": {"use_gpu": {"const": False}}, "required": ["use_gpu"]},
                    "then": {
                        "properties": {
                            "gpu_count": {"type": "null"},
                            "gpu_product": {"type": "null"},
                        }
                    },
                },
                {
                    "if": {
                        "properties": {"autoscaling": {"type": "object"}},
                        "required": ["autoscaling"],
                    },
                    "then": {"not": {"required": ["replicas"]}},
                },
            ]
        }
    )

    model_name: str = Field(
        description=(
            "Hugging Face repo id (org/name), or weights already inside the trust boundary: "
            "pvc://<claim>/<path> (a PVC in your tenant's namespace) or s3://<bucket>/<prefix>."
        ),
        json_schema_extra={"anyOf": MODEL_SOURCE_SHAPES},
    )
    deployment_name: str | None = Field(
        default=None,
        max_length=63,
        pattern=NAME_PATTERN,
        description="Name, unique in your tenant.",
    )
    use_gpu: bool = Field(default=True, description="false: CPU build of vLLM.")
    gpu_count: int | None = Field(default=None, ge=1, le=8, description="GPUs per replica.")
    gpu_product: str | None = Field(default=None, max_length=63, pattern=md.GPU_PRODUCT_PATTERN)
    replicas: int = Field(default=1, ge=0, le=16)
    max_model_len: int | None = Field(default=None, ge=1, le=1_048_576)
    cpu: str | None = Field(
        default=None,
        max_length=32,
        pattern=QUANTITY_PATTERN,
        description='CPU request of the model container, e.g. "1" or "500m"; the operator\'s default when unset.',
    )
    memory: str | None = Field(
        default=None,
        max_length=32,
        pattern=QUANTITY_PATTERN,
        description="Memory request and limit of the model container, e.g. 6Gi; the operator's default when unset.",
    )
    autoscaling: Autoscaling | None = Field(
        default=None, description="Replicas that follow the load instead of a fixed count."
    )
    routing: Routing | None = Field(
        default=None, description="How requests are spread over the replicas."
    )

    @field_validator("model_name")
    @classmethod
    def _model_source(cls, value: str) -> str:
        model_source(value)  # raises ValueError with what is wrong
        return value

    @model_validator(mode="after")
    def _gpu_settings_need_gpu(self) -> CreateDeployment:
        if not self.use_gpu and (self.gpu_count is not None or self.gpu_product is not None):
            raise ValueError("gpu_count and gpu_product may only be set when use_gpu is true")
        if self.autoscaling is not None and "replicas" in self.model_fields_set:
            raise ValueError(
                "replicas and autoscaling cannot both be set: with autoscaling, the autoscaler "
                "decides the replicas"
            )
        return self


class UpdateDeployment(_Body):
    """PATCH /v1/deployments/{id}."""

    replicas: int | None = Field(default=None, ge=0, le=16)
    max_model_len: int | None = Field(default=None, ge=1, le=1_048_576)
    routing: Routing | None = Field(
        default=None, description="How requests are spread over the replicas."
    )


class GenerateForDeployment(_Body):
    """POST /v1/deployments/{id}/generate: the deployment is in the path."""

    prompt: str = Field(min_length=1, description="Text to continue; at most 1 MiB.")
    max_tokens: int = Field(default=256, ge=1, le=32768)
    temperature: float = Field(default=1.0, ge=0.0, le=2.0)
    stream: bool = False

    @field_validator("prompt")
    @classmethod
    def _prompt_size(cls, value: str) -> str:
        if len(value.encode("utf-8", errors="surrogatepass")) > MAX_PROMPT_BYTES:
            raise ValueError("prompt is larger than 1 MiB")
        return value


class Generate(GenerateForDeployment):
    """POST /v1/generate."""

    deployment_id: str = Field(max_length=63, pattern=NAME_PATTERN, description="Deployment id.")


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class Deployment(BaseModel):
    id: str
    name: str
    model_name: str | None
    status: Status
    use_gpu: bool
    gpu_count: int
    replicas: int
    ready_replicas: int
    endpoint: str | None
    message: str
    created_at: str | None


class Condition(BaseModel):
    type: str
    status: str
    reason: str
    message: str


class DeploymentStatus(BaseModel):
    id: str
    status: Status
    ready_replicas: int
    replicas: int
    message: str
    conditions: list[Condition]


class DeploymentList(BaseModel):
    data: list[Deployment]


class Deleted(BaseModel):
    id: str
    deleted: bool


class Generation(BaseModel):
    id: str
    deployment_id: str
    text: str
    finish_reason: str | None
    usage: Usage


class Subscription(BaseModel):
    tier: str
    current_usage: int
    usage_limit: int
    period_start: str | None
    period_end: str | None


class ErrorDetail(BaseModel):
    type: str
    message: str
    request_id: str


class ErrorBody(BaseModel):
    error: ErrorDetail
