"""The ModelDeployment resource as pydantic models: the one source of its CRD and its parsing.

Field descriptions become ``kubectl explain`` text; defaults, bounds and enums become the CRD's
schema; CEL rules ride on the models (``x-kubernetes-validations``) and are mirrored by pydantic
validators, so the API server and Python refuse the same specs with the same words.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Annotated, Any, Final, Literal

from pydantic import ConfigDict, Field, ValidationError, field_validator, model_validator

from paitient_common.durations import parse_duration
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
# Completions per request (n, best_of) a gateway admits: the default and the highest a spec may
# set (OpenAI's cap on n).
DEFAULT_MAX_CHOICES: Final = 16
MAX_CHOICES_CAP: Final = 128
# One segment of a URI's path: letters, digits and . _ - + = @ , but never "." or ".." (a
# pvc:// path is joined to the claim's mount: ".." would leave it) and never empty ("//").
# A dot is "[.]": the pattern also sits in a CEL string literal, where a backslash is an escape.
_SEGMENT_CHARS: Final = "[-A-Za-z0-9_+=@,.]"
URI_PATH_SEGMENT: Final = f"([.]?[-A-Za-z0-9_+=@,]{_SEGMENT_CHARS}*|[.][.]{_SEGMENT_CHARS}+)"
# The path after the claim or bucket: segments, and at most one trailing "/".
URI_PATH: Final = f"(/{URI_PATH_SEGMENT})*/?"
# pvc://<claim>[/<path>]: claim is a DNS-1123 subdomain; s3://<bucket>[/<prefix>]: S3 bucket rules.
PVC_URI_PATTERN: Final = f"^pvc://[a-z0-9]([-a-z0-9.]*[a-z0-9])?{URI_PATH}$"
S3_URI_PATTERN: Final = f"^s3://[a-z0-9][-a-z0-9.]{{1,61}}[a-z0-9]{URI_PATH}$"
URI_PATH_MESSAGE: Final = (
    "its path is segments of letters, digits and . _ - + = @ , with no '.' or '..' segment "
    "and no empty one ('//')"
)

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
Phase = Literal["Pending", "Progressing", "Ready", "Degraded", "Failed", "ScaledToZero"]
AutoscalingEngine = Literal["native", "hpa", "keda"]
AutoscalingMetric = Literal["inFlight", "waiting"]
# A duration as people write it: a whole number and one unit (0s allowed for the window).
DURATION_PATTERN: Final = r"^[0-9]{1,6}[hms]$"
DEFAULT_TARGET: Final = 10.0

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
    f"model.uri must look like pvc://<claim-name>/<path>: {URI_PATH_MESSAGE}",
)
_URI_S3_RULE = cel(
    f"!self.startsWith('s3://') || self.matches('{S3_URI_PATTERN}')",
    f"model.uri must look like s3://<bucket>/<prefix>: {URI_PATH_MESSAGE}",
)
_GPU_ONLY_WITH_USE_GPU_RULE = cel(
    "self.useGpu || !has(self.gpu)",
    "gpu may only be set when useGpu is true",
)
_CPU_KV_CACHE_ONLY_ON_CPU_RULE = cel(
    "!self.useGpu || !has(self.runtime) || !has(self.runtime.cpuKvCacheSpace)",
    "runtime.cpuKvCacheSpace may only be set when useGpu is false",
)
_REPLICAS_OR_AUTOSCALING_RULE = cel(
    "!has(self.replicas) || !has(self.autoscaling)",
    "replicas and autoscaling cannot both be set: with autoscaling, the autoscaler decides "
    "the replicas (remove spec.replicas)",
    fieldPath=".replicas",
    reason="FieldValueForbidden",
)
_MIN_NOT_ABOVE_MAX_RULE = cel(
    "self.minReplicas <= self.maxReplicas",
    "autoscaling.minReplicas must not be greater than autoscaling.maxReplicas",
    fieldPath=".minReplicas",
)
_HPA_NOT_FROM_ZERO_RULE = cel(
    "self.engine != 'hpa' || self.minReplicas >= 1",
    "autoscaling.minReplicas must be at least 1 with engine hpa (a HorizontalPodAutoscaler "
    "cannot scale from zero; use native or keda)",
    fieldPath=".minReplicas",
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
    max_choices: int | None = Field(
        default=None,
        ge=1,
        le=MAX_CHOICES_CAP,
        description=(
            "The most completions one request may ask for (n, best_of): one request with a "
            f"large n occupies the shared model for everyone. {DEFAULT_MAX_CHOICES} when unset, "
            f"at most {MAX_CHOICES_CAP} (OpenAI's own cap on n)."
        ),
    )


class AutoscalingTarget(WireModel):
    """What one replica should carry: the autoscaler keeps the load per replica near it."""

    metric: AutoscalingMetric = Field(
        default="inFlight",
        description=(
            "inFlight: completion requests in flight at each replica's gateway (streams until "
            "their last byte). waiting: requests queued in vLLM (vllm:num_requests_waiting); "
            "every replica with work keeps its place and one more comes per value queued."
        ),
    )
    value: float = Field(
        default=DEFAULT_TARGET,
        gt=0,
        le=100_000,
        description=(
            "Load per replica to aim for (> 0), e.g. 8 requests in flight. Choose what one "
            "replica serves at the latency you want: a GPU vLLM batches dozens."
        ),
    )


class AutoscalingSpec(WireModel):
    """Replicas that follow the load, within bounds, instead of a fixed count."""

    model_config = ConfigDict(
        json_schema_extra=cel_rules(_MIN_NOT_ABOVE_MAX_RULE, _HPA_NOT_FROM_ZERO_RULE)
    )

    engine: AutoscalingEngine = Field(
        default="native",
        description=(
            "native: the operator decides from the gateways' load (no other component). hpa: "
            "the operator renders a HorizontalPodAutoscaler on the gateways' metrics (needs a "
            "custom-metrics adapter). keda: it renders a KEDA ScaledObject (needs KEDA's CRDs "
            "and a Prometheus scraping the gateways)."
        ),
    )
    min_replicas: int = Field(
        default=1,
        ge=0,
        le=1000,
        description=(
            "Fewest replicas; 0 lets an idle deployment stop, and a request brings one back "
            "(the front door holds it meanwhile)."
        ),
    )
    max_replicas: int = Field(
        ge=1, le=1000, description="Most replicas; the tenant's tier must hold this many."
    )
    target: AutoscalingTarget = nested_object(AutoscalingTarget, "The load per replica.")
    scale_down_delay: str = Field(
        default="5m",
        pattern=DURATION_PATTERN,
        description=(
            "How long the load must stay below what the replicas carry before one is removed "
            "(and an idle deployment goes to minReplicas), e.g. 5m or 90s."
        ),
    )
    stabilization_window: str = Field(
        default="30s",
        pattern=DURATION_PATTERN,
        description=(
            "How long the load must stay above what the replicas carry before one is added "
            "(0s: at once). Scaling from zero never waits."
        ),
    )

    @property
    def scale_down_delay_period(self) -> timedelta:
        return parse_duration(self.scale_down_delay, allow_zero=True)

    @property
    def stabilization_window_period(self) -> timedelta:
        return parse_duration(self.stabilization_window, allow_zero=True)

    @model_validator(mode="after")
    def _bounds(self) -> AutoscalingSpec:
        if self.min_replicas > self.max_replicas:
            raise ValueError(_MIN_NOT_ABOVE_MAX_RULE["message"])
        if self.engine == "hpa" and self.min_replicas < 1:
            raise ValueError(_HPA_NOT_FROM_ZERO_RULE["message"])
        return self


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
        json_schema_extra=cel_rules(
            _GPU_ONLY_WITH_USE_GPU_RULE,
            _CPU_KV_CACHE_ONLY_ON_CPU_RULE,
            _REPLICAS_OR_AUTOSCALING_RULE,
        )
    )

    model: ModelSource = Field(description="The model to serve and where its weights come from.")
    replicas: int | None = Field(
        default=None,
        ge=0,
        description=(
            "Number of model pods (1 when unset); 0 stops serving. Not with autoscaling. An HPA "
            "or KEDA of your own may drive it through the scale subresource."
        ),
    )
    autoscaling: AutoscalingSpec | None = Field(
        default=None,
        description="Replicas that follow the load (instead of replicas).",
    )
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
        if self.replicas is not None and self.autoscaling is not None:
            raise ValueError(_REPLICAS_OR_AUTOSCALING_RULE["message"])
        return self

    @property
    def fixed_replicas(self) -> int:
        """``replicas``, 1 when unset (meaningful without autoscaling)."""
        return 1 if self.replicas is None else self.replicas

    @property
    def most_replicas(self) -> int:
        """The most pods this spec can ask for: autoscaling's maximum, or the fixed count."""
        return self.autoscaling.max_replicas if self.autoscaling else self.fixed_replicas

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


class AutoscalingInputs(OpenModel):
    """What a decision was made from."""

    metric: AutoscalingMetric | None = Field(default=None, description="The target's metric.")
    target: float | None = Field(default=None, description="The target per replica.")
    replicas_read: int | None = Field(default=None, description="Replicas whose load was read.")
    in_flight: float | None = Field(default=None, description="Completions in flight, summed.")
    running: float | None = Field(default=None, description="Requests vLLM runs, summed.")
    waiting: float | None = Field(default=None, description="Requests vLLM queues, summed.")
    unread: int | None = Field(default=None, description="Replicas whose load could not be read.")
    woken: bool | None = Field(default=None, description="A request waited at the front door.")
    recommendation: int | None = Field(default=None, description="Replicas the load asked for.")


class AutoscalingDecision(OpenModel):
    """The last change of replicas and why."""

    time: str | None = Field(default=None, description="When (RFC 3339).")
    from_replicas: int | None = Field(default=None, description="Replicas before.")
    to_replicas: int | None = Field(default=None, description="Replicas after.")
    reason: str | None = Field(default=None, description="CamelCase reason.")
    message: str | None = Field(default=None, description="What was seen, against what target.")
    inputs: AutoscalingInputs | None = Field(default=None, description="The inputs.")


class AutoscalingPending(OpenModel):
    """A change the load has asked for, waiting out its window."""

    direction: Literal["up", "down"] | None = Field(default=None, description="up or down.")
    since: str | None = Field(default=None, description="Since when (RFC 3339).")
    replicas: int | None = Field(
        default=None, description="Lowest (up) or highest (down) replicas asked for meanwhile."
    )


class AutoscalingStatus(OpenModel):
    """The autoscaler's state: what it decided, and what it waits for (level-based: a restarted
    operator continues from here)."""

    engine: AutoscalingEngine | None = Field(default=None, description="Who scales.")
    desired_replicas: int | None = Field(
        default=None, ge=0, description="Replicas the autoscaler wants (native engine)."
    )
    last_scale_time: str | None = Field(default=None, description="Last change (RFC 3339).")
    last_decision: AutoscalingDecision | None = Field(default=None, description="Last change.")
    pending: AutoscalingPending | None = Field(default=None, description="A change under way.")
    wake_token: str | None = Field(
        default=None, description="The last wake request from the front door seen."
    )
    wake_seen_at: str | None = Field(default=None, description="When it was first seen.")
    yielded_to: str | None = Field(
        default=None,
        description="An autoscaler of the user's that scales this deployment (kind/name): the "
        "operator leaves the replicas to it.",
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
    desired_replicas: int | None = Field(
        default=None, ge=0, description="Pods the Deployment asks for now."
    )
    autoscaling: AutoscalingStatus | None = Field(
        default=None, description="The autoscaler's decisions and state (spec.autoscaling)."
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
