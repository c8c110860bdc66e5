"""The ModelDeployment resource as pydantic models: the one source of its CRD and its parsing.

Field descriptions become ``kubectl explain`` text; defaults, bounds and enums become the CRD's
schema; CEL rules ride on the models (``x-kubernetes-validations``) and are mirrored by pydantic
validators, so the API server and Python refuse the same specs with the same words.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Final, Literal

from pydantic import ConfigDict, Field, ValidationError, field_validator, model_validator

from paitient_common.resources._base import OpenModel, WireModel, cel, cel_rules

# Re-exported: callers read the group and version from each kind's module.
from paitient_common.resources.shared import API_VERSION as API_VERSION
from paitient_common.resources.shared import GROUP as GROUP
from paitient_common.resources.shared import (
    K8S_NAME_PATTERN,
    LABEL_NAME_PATTERN,
    QUANTITY_PATTERN,
    Condition,
    InvalidResource,
    ObjectMeta,
    SecretKeyRef,
    nested_object,
    plain,
)
from paitient_common.resources.shared import VERSION as VERSION

KIND: Final = "ModelDeployment"
PLURAL: Final = "modeldeployments"
SINGULAR: Final = "modeldeployment"
SHORT_NAMES: Final = ("md",)
CATEGORIES: Final = ("paitient",)
# The label naming its ModelDeployment on every child and pod the operator makes: what the
# operator's pod watch, the local data plane and tooling select by.
MD_LABEL: Final = "paitient.ai/modeldeployment"

# Hugging Face repo id: optional owner, then name; no "..", no leading punctuation.
HF_REPO_PATTERN: Final = r"^([A-Za-z0-9][A-Za-z0-9._-]*/)?[A-Za-z0-9][A-Za-z0-9._-]*$"
# A label value: nodes are selected by nvidia.com/gpu.product.
GPU_PRODUCT_PATTERN: Final = r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
REVISION_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._/-]*$"
# The resource's name names its children (checked by the CRD's metadata.name schema, not CEL:
# a regex over a string of unknown length would blow CEL's cost budget) (a Service needs a DNS-1035 label) and is a label value.
NAME_PATTERN: Final = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
NAME_MAX: Final = 63
MAX_HF_REPO_LENGTH: Final = 200
MAX_URI_LENGTH: Final = 1024
# pvc://<claim>[/<path>]: claim is a DNS-1123 subdomain; s3://<bucket>[/<prefix>]: S3 bucket rules.
PVC_URI_PATTERN: Final = r"^pvc://[a-z0-9]([-a-z0-9.]*[a-z0-9])?(/.*)?$"
S3_URI_PATTERN: Final = r"^s3://[a-z0-9][-a-z0-9.]{1,61}[a-z0-9](/.*)?$"

Dtype = Literal["auto", "half", "float16", "bfloat16", "float", "float32"]
# --quantization choices of the pinned vLLM (0.32.0) most deployments meet; tests/vllm parses each
# with vLLM's own parser, so one it dropped fails there.
Quantization = Literal[
    "awq",
    "auto_awq",
    "fp8",
    "modelopt",
    "modelopt_fp4",
    "modelopt_mxfp8",
    "modelopt_mixed",
    "auto_gptq",
    "gptq",
    "gptq_marlin",
    "awq_marlin",
    "humming",
    "compressed-tensors",
    "experts_int8",
    "quark",
    "moe_wna16",
    "torchao",
    "inc",
    "mxfp4",
    "gpt_oss_mxfp4",
    "deepseek_v4_fp8",
    "online",
    "fp8_per_tensor",
    "fp8_per_block",
    "fp8_per_channel",
    "int8_per_channel_weight_only",
    "nvfp4_per_token",
    "mxfp8",
]
Phase = Literal["Pending", "Progressing", "Ready", "Degraded", "Failed"]

_MODEL_SOURCE_RULE = cel(
    "has(self.name) != has(self.uri)",
    "exactly one of model.name (a Hugging Face repo id) and model.uri must be set",
)
_URI_PREFIX_RULE = cel(
    "self.startsWith('pvc://') || self.startsWith('s3://')",
    "model.uri must start with pvc:// or s3://",
)
_URI_PVC_RULE = cel(
    f"!self.startsWith('pvc://') || self.matches('{PVC_URI_PATTERN}')",
    "model.uri must look like pvc://<claim-name>/<path>",
)
_URI_S3_RULE = cel(
    f"!self.startsWith('s3://') || self.matches('{S3_URI_PATTERN}')",
    "model.uri must look like s3://<bucket>/<prefix>",
)
_GPU_ONLY_WITH_USE_GPU_RULE = cel(
    "self.useGpu || !has(self.gpu)",
    "gpu may only be set when useGpu is true",
)
_CPU_KV_CACHE_ONLY_ON_CPU_RULE = cel(
    "!self.useGpu || !has(self.runtime) || !has(self.runtime.cpuKvCacheSpace)",
    "runtime.cpuKvCacheSpace may only be set when useGpu is false",
)
# Root-level rules: the API server lets CEL read metadata.name there (and only there).
NAME_MESSAGE: Final = (
    f"metadata.name must be a DNS-1035 label of at most {NAME_MAX} characters "
    "(it names the deployment's Service and is used as a label value)"
)


def uri_problem(uri: str) -> str | None:
    """What is wrong with a model URI, or None: mirrors _URI_*_RULE for callers that never reach
    the API server (the front door, tests)."""
    if not uri.startswith(("pvc://", "s3://")):
        return _URI_PREFIX_RULE["message"]
    if uri.startswith("pvc://") and not re.match(PVC_URI_PATTERN, uri):
        return _URI_PVC_RULE["message"]
    if uri.startswith("s3://") and not re.match(S3_URI_PATTERN, uri):
        return _URI_S3_RULE["message"]
    if len(uri) > MAX_URI_LENGTH:
        return f"model.uri must be at most {MAX_URI_LENGTH} characters"
    return None


class ModelSource(WireModel):
    """Where the weights come from: a Hugging Face repo id, or a URI (pvc:// or s3://)."""

    model_config = ConfigDict(json_schema_extra=cel_rules(_MODEL_SOURCE_RULE))

    name: str | None = Field(
        default=None,
        description=(
            "Hugging Face repo id, e.g. ZimaBlueAI/HuatuoGPT-o1-8B. Also the name clients use "
            "in the OpenAI `model` field. Exactly one of name and uri is set."
        ),
        max_length=MAX_HF_REPO_LENGTH,
        pattern=HF_REPO_PATTERN,
    )
    revision: str = Field(
        default="main",
        description="Branch, tag or commit of the Hugging Face repo (ignored for uri).",
        max_length=255,
        pattern=REVISION_PATTERN,
    )
    uri: str | None = Field(
        default=None,
        description=(
            "Weights already inside the trust boundary: pvc://<claim>/<path> (a PVC in this "
            "namespace, mounted read-only) or s3://<bucket>/<prefix> (streamed by vLLM). "
            "Exactly one of name and uri is set."
        ),
        max_length=MAX_URI_LENGTH,
        json_schema_extra=cel_rules(_URI_PREFIX_RULE, _URI_PVC_RULE, _URI_S3_RULE),
    )
    token_secret_ref: SecretKeyRef | None = Field(
        default=None,
        description="Secret holding a Hugging Face token, for gated or private repos (env HF_TOKEN).",
    )

    @field_validator("uri")
    @classmethod
    def _uri_shape(cls, uri: str | None) -> str | None:
        problem = None if uri is None else uri_problem(uri)
        if problem:
            raise ValueError(problem)
        return uri

    @model_validator(mode="after")
    def _exactly_one_source(self) -> ModelSource:
        if (self.name is None) == (self.uri is None):
            raise ValueError(_MODEL_SOURCE_RULE["message"])
        return self

    @property
    def is_remote(self) -> bool:
        """True when the weights are fetched from outside the cluster (Hugging Face or S3)."""
        return self.uri is None or self.uri.startswith("s3://")

    def pvc_claim_and_path(self) -> tuple[str, str] | None:
        """(claim, path inside it) for a pvc:// source, else None."""
        if self.uri is None or not self.uri.startswith("pvc://"):
            return None
        claim, _, path = self.uri.removeprefix("pvc://").partition("/")
        return claim, path.strip("/")


class GpuSpec(WireModel):
    """GPUs per replica; the vLLM tensor-parallel size follows the count."""

    count: int = Field(
        default=1, ge=1, le=8, description="GPUs per replica (1-8), one node each replica."
    )
    product: str | None = Field(
        default=None,
        description=(
            "GPU model, matched against the node label nvidia.com/gpu.product, "
            "e.g. NVIDIA-H100-80GB-HBM3. Any GPU when unset."
        ),
        max_length=63,
        pattern=GPU_PRODUCT_PATTERN,
    )


class ResourceSpec(WireModel):
    """CPU and memory for the vLLM container (requests; memory is also the limit)."""

    cpu: str = Field(
        default="4",
        description='CPU request, a Kubernetes quantity, e.g. "8" or "500m".',
        pattern=QUANTITY_PATTERN,
        max_length=32,
    )
    memory: str = Field(
        default="32Gi",
        description="Memory request and limit, e.g. 64Gi.",
        pattern=QUANTITY_PATTERN,
        max_length=32,
    )


class RuntimeSpec(WireModel):
    """vLLM settings. Listening address, port and auth are the operator's, not the spec's."""

    image: str | None = Field(
        default=None,
        description="vLLM image; the operator's configured GPU or CPU image when unset.",
        max_length=512,
    )
    max_model_len: int | None = Field(
        default=None,
        ge=1,
        description="Context length (--max-model-len); the model's own when unset.",
    )
    gpu_memory_utilization: float = Field(
        default=0.9, gt=0, le=1, description="Fraction of GPU memory vLLM may use (0-1]; GPU only."
    )
    cpu_kv_cache_space: str | None = Field(
        default=None,
        description=(
            "KV cache of the CPU build (VLLM_CPU_KVCACHE_SPACE), a quantity rounded down to "
            "whole GiB, at least 1Gi; useGpu: false only. When unset, a third of "
            "resources.memory after 4Gi for vLLM's runtime (at least 1Gi); the rest holds the "
            "weights."
        ),
        pattern=QUANTITY_PATTERN,
        max_length=32,
    )
    dtype: Dtype = Field(default="auto", description="Weight and activation dtype (--dtype).")
    quantization: Quantization | None = Field(
        default=None,
        description="Quantization method of the weights (--quantization), when quantized.",
    )
    extra_args: list[Annotated[str, Field(max_length=1024)]] = Field(
        default_factory=list,
        description=(
            "Further vLLM flags. Flags the operator sets (model, parallelism, ...) or that would "
            "open the server (--host, --port, --api-key, CORS, --ssl-*, ...) are refused."
        ),
        max_length=64,
    )


class StorageSpec(WireModel):
    """The PVC that caches downloaded weights, on a StorageClass known to be encrypted."""

    size: str = Field(
        default="100Gi",
        description="Size of the model cache PVC.",
        pattern=QUANTITY_PATTERN,
        max_length=32,
    )
    storage_class_name: str | None = Field(
        default=None,
        description=(
            "StorageClass of the cache; must be encrypted per operator policy. The operator's "
            "default (or the cluster default, if encrypted) when unset."
        ),
        max_length=253,
        pattern=K8S_NAME_PATTERN,
    )


class AccessSpec(WireModel):
    """Who may reach the gateway, besides the front door."""

    allowed_namespaces: list[Annotated[str, Field(max_length=63, pattern=LABEL_NAME_PATTERN)]] = (
        Field(
            default_factory=list,
            description="Namespaces whose pods may call the gateway port directly.",
            max_length=64,
            json_schema_extra={"x-kubernetes-list-type": "set"},
        )
    )


class RateLimits(WireModel):
    """Per-deployment limits the gateway enforces on top of each tenant's own."""

    requests_per_minute: int | None = Field(
        default=None,
        ge=1,
        description="Requests per minute across all callers; unlimited when unset.",
    )
    tokens_per_minute: int | None = Field(
        default=None,
        ge=1,
        description="Prompt plus completion tokens per minute; unlimited when unset.",
    )


RoutingStrategy = Literal["prefix", "least-load", "round-robin"]
ROUTING_STRATEGIES: Final = ("prefix", "least-load", "round-robin")
DEFAULT_PREFIX_LENGTH: Final = 256
# Characters of the prompt hashed for affinity: past a few pages, a "prefix" is the whole prompt
# and affinity is lost; the front door reads no more than this of a body.
MAX_PREFIX_LENGTH: Final = 32_768
DEFAULT_LOAD_BOUND: Final = 1.25
MAX_LOAD_BOUND: Final = 10.0


class RoutingSpec(WireModel):
    """How the front door picks one of the deployment's Ready replicas for each request."""

    strategy: RoutingStrategy = Field(
        default="prefix",
        description=(
            "prefix: requests whose prompts (or messages) start alike, from one tenant, go to "
            "the same replica, whose prefix cache already holds that start (consistent hashing "
            "with bounded loads); least-load: the replica with the fewest requests in flight "
            "(and queued in vLLM); round-robin: each replica in turn, as a Service would."
        ),
    )
    prefix_length: int = Field(
        default=DEFAULT_PREFIX_LENGTH,
        ge=1,
        le=MAX_PREFIX_LENGTH,
        description=(
            "prefix only: how many leading characters of the prompt (completions) or of the "
            "messages, roles included (chat), pick the replica. Long enough to cover what "
            "requests share (a system prompt), short enough to stop before what differs."
        ),
    )
    load_bound: float = Field(
        default=DEFAULT_LOAD_BOUND,
        ge=1.0,
        le=MAX_LOAD_BOUND,
        description=(
            "prefix only: no replica takes a request that would put its load above this factor "
            "of the mean load (1.25: 25% above the mean); the request goes to the next replica "
            "on the ring instead."
        ),
    )


class ModelDeploymentSpec(WireModel):
    """Desired state: which model, on what hardware, who may call it, how fast."""

    model_config = ConfigDict(
        json_schema_extra=cel_rules(_GPU_ONLY_WITH_USE_GPU_RULE, _CPU_KV_CACHE_ONLY_ON_CPU_RULE)
    )

    model: ModelSource = Field(description="The model to serve and where its weights come from.")
    replicas: int = Field(default=1, ge=0, description="Number of model pods; 0 stops serving.")
    use_gpu: bool = Field(
        default=True,
        description="Run on GPUs; false runs the CPU build of vLLM with no GPU requested.",
    )
    gpu: GpuSpec | None = Field(
        default=None,
        description="GPU count and product per replica; only with useGpu (1 GPU if unset).",
    )
    resources: ResourceSpec = nested_object(ResourceSpec, "CPU and memory for the vLLM container.")
    runtime: RuntimeSpec = nested_object(RuntimeSpec, "vLLM runtime settings.")
    storage: StorageSpec = nested_object(StorageSpec, "Model cache volume.")
    access: AccessSpec = nested_object(AccessSpec, "Network access to the deployment.")
    rate_limits: RateLimits = nested_object(RateLimits, "Per-deployment rate limits.")
    routing: RoutingSpec = nested_object(
        RoutingSpec, "How the front door spreads requests over the replicas."
    )

    @model_validator(mode="after")
    def _device_fields_match_use_gpu(self) -> ModelDeploymentSpec:
        if self.gpu is not None and not self.use_gpu:
            raise ValueError(_GPU_ONLY_WITH_USE_GPU_RULE["message"])
        if self.use_gpu and self.runtime.cpu_kv_cache_space is not None:
            raise ValueError(_CPU_KV_CACHE_ONLY_ON_CPU_RULE["message"])
        return self

    @property
    def gpu_count(self) -> int:
        """GPUs per replica: 0 on CPU, the spec's count, or 1 when useGpu without gpu."""
        if not self.use_gpu:
            return 0
        return self.gpu.count if self.gpu is not None else 1

    @property
    def gpu_product(self) -> str | None:
        """The requested GPU product, if any."""
        return self.gpu.product if self.gpu is not None and self.use_gpu else None


class ServingCertificateStatus(OpenModel):
    """The gateway's TLS serving certificate."""

    secret_name: str | None = Field(
        default=None, description="Secret holding it (tls.crt, tls.key), mounted into the gateway."
    )
    issuer: str | None = Field(
        default=None,
        description="paitient-operator (the operator's CA), or the cert-manager Issuer or "
        "ClusterIssuer (kind/name).",
    )
    not_after: str | None = Field(default=None, description="When it expires (RFC 3339).")
    renew_after: str | None = Field(
        default=None, description="When it is replaced (RFC 3339): renewBefore ahead of expiry."
    )


class ModelDeploymentStatus(OpenModel):
    """Observed state, written by the operator only."""

    phase: Phase | None = Field(default=None, description="One-word summary of the conditions.")
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Ready and the conditions behind it (metav1.Condition).",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    observed_generation: int | None = Field(
        default=None, description="metadata.generation the status describes."
    )
    ready_replicas: int | None = Field(default=None, ge=0, description="Pods passing readiness.")
    replicas: int | None = Field(
        default=None, ge=0, description="Pods that exist (scale subresource)."
    )
    selector: str | None = Field(
        default=None,
        description="Label selector of the pods, for the scale subresource and autoscalers.",
    )
    endpoint: str | None = Field(
        default=None, description="In-cluster URL of the gateway, e.g. https://name.ns.svc:8443."
    )
    serving_certificate: ServingCertificateStatus | None = Field(
        default=None, description="The gateway's TLS serving certificate."
    )
    message: str | None = Field(default=None, description="Human-readable summary of the state.")


class ModelDeploymentMeta(ObjectMeta):
    """metadata of a ModelDeployment: its name must also be a DNS-1035 label."""

    @field_validator("name")
    @classmethod
    def _dns_label(cls, name: str) -> str:
        # Mirrors the CRD's metadata.name schema (build_crd's name_pattern / name_max_length).
        if len(name) > NAME_MAX or not re.match(NAME_PATTERN, name):
            raise ValueError(NAME_MESSAGE)
        return name


class ModelDeployment(WireModel):
    """A model served behind the gateway in a tenant's namespace."""

    api_version: Literal["paitient.ai/v1alpha1"] = Field(
        default="paitient.ai/v1alpha1", description="API version."
    )
    kind: Literal["ModelDeployment"] = Field(default=KIND, description="Kind.")
    metadata: ModelDeploymentMeta = Field(description="Standard object metadata.")
    spec: ModelDeploymentSpec = Field(description="Desired state.")
    status: ModelDeploymentStatus | None = Field(default=None, description="Observed state.")

    @property
    def name(self) -> str:
        """metadata.name, which every child object is named after."""
        return self.metadata.name

    @property
    def namespace(self) -> str:
        """metadata.namespace ("default" if a caller left it out)."""
        return self.metadata.namespace or "default"

    @property
    def served_model_name(self) -> str:
        """The name clients put in the OpenAI ``model`` field."""
        return self.spec.model.name or self.metadata.name


def parse_model_deployment(body: Mapping[str, Any]) -> ModelDeployment:
    """A ModelDeployment from an API object (dict or kopf body); ``InvalidResource`` if it is not one.

    The CRD refuses nearly everything this would; what remains (an object stored before a
    stricter CRD) becomes a clear message instead of a traceback.
    """
    try:
        return ModelDeployment.model_validate(plain(body))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'object'}: {err['msg']}"
            for err in exc.errors(include_url=False)
        )
        raise InvalidResource(f"invalid ModelDeployment: {problems}") from None
