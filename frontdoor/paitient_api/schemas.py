"""Request and response bodies of the /v1 API (pydantic): validation, and the OpenAPI document.

docs/rest-api.md describes the same contract in prose; both SDKs follow it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

NAME_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
MODEL_PATTERN = r"^([A-Za-z0-9][A-Za-z0-9._-]*/)?[A-Za-z0-9][A-Za-z0-9._-]*$"
MAX_PROMPT_BYTES = 1024 * 1024

Status = Literal["pending", "progressing", "ready", "degraded", "failed"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class CreateDeployment(_Body):
    """POST /v1/deployments."""

    model_name: str = Field(
        max_length=200, pattern=MODEL_PATTERN, description="Hugging Face repo id."
    )
    deployment_name: str | None = Field(
        default=None,
        max_length=63,
        pattern=NAME_PATTERN,
        description="Name, unique in your tenant.",
    )
    use_gpu: bool = Field(default=True, description="false: CPU build of vLLM.")
    gpu_count: int | None = Field(default=None, ge=1, le=8, description="GPUs per replica.")
    gpu_product: str | None = Field(default=None, max_length=100, pattern=r"^[A-Za-z0-9._-]+$")
    replicas: int = Field(default=1, ge=0, le=16)
    max_model_len: int | None = Field(default=None, ge=1, le=1_048_576)

    @field_validator("gpu_count")
    @classmethod
    def _gpu_count_needs_gpu(cls, value: int | None, info: Any) -> int | None:
        if value is not None and info.data.get("use_gpu") is False:
            raise ValueError("gpu_count may only be set when use_gpu is true")
        return value


class UpdateDeployment(_Body):
    """PATCH /v1/deployments/{id}."""

    replicas: int | None = Field(default=None, ge=0, le=16)
    max_model_len: int | None = Field(default=None, ge=1, le=1_048_576)


class Generate(_Body):
    """POST /v1/generate (and /v1/deployments/{id}/generate without deployment_id)."""

    deployment_id: str | None = Field(default=None, max_length=63, pattern=NAME_PATTERN)
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
