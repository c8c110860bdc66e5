"""Docs that run: every command and program of README.md and docs/*.md that a user runs against
the local stack, run as written and in order, from a shell that has none of the PaiTIENT
variables set — the README's `eval "$(make -s up | tail -n3)"` starts the stack, its walk-through
makes the tenant, the key and the tiny model's deployment (real vLLM on the real node) that the
other pages call. A block that cannot run here carries a not-run marker with its reason
(tests/docs/blocks.py); tests/unit/docs checks that every block is one or the other.

While `make up`'s release is installed, the session's own operator is paused: two operators would
fight. Afterwards the release, its relay and everything the docs made are removed (the cluster
stays: it is the session's).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from paitient_cli import admin
from paitient_common.kubeapi import Kube
from paitient_common.resources.modeldeployment import MD_LABEL
from paitient_localcluster.cluster import LocalCluster
from paitient_localcluster.controlplane.pki import NODE_NAME
from paitient_localcluster.host.processes import Managed, free_port
from paitient_localcluster.stack import lifecycle
from paitient_localcluster.stack.chart import helm
from paitient_localcluster.stack.tiny_model import MODEL_URI
from tests.docs.blocks import all_blocks
from tests.docs.runner import Ran, run_block
from tests.integration.operator_process import OperatorProcess
from tests.integration.waiting import wait_for
from tests.prerequisites import missing

TENANT, NAMESPACE, DEPLOYMENT = "acme", "tenant-acme", "triage-assistant"
EXAMPLES_NAMESPACE = "tenant-demo"  # examples/00-namespace.yaml
# What a user's fresh shell does not have: the docs set these themselves.
UNSET = ("PAITIENT_BASE_URL", "PAITIENT_CA_BUNDLE", "PAITIENT_API_KEY", "PAITIENT_CLIENT_ID",
         "KUBECONFIG", "SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS", "PAITIENT_TEST_KUBECONFIG")  # fmt: skip


@contextlib.contextmanager
def _cleaned_up(kubeconfig: Path, kube: Kube) -> Iterator[None]:
    """Removes what `make up` and the docs made: the relay, the release and its certificate, the
    README's tenant (and with it its namespace, model and claim), the examples' namespace."""
    try:
        yield
    finally:
        Managed(lifecycle.FRONT_DOOR_RELAY, kubeconfig.parent).stop()
        with contextlib.suppress(admin.CliError):
            admin.delete_tenant(kube, TENANT, True)
        kube.delete("v1", "Namespace", EXAMPLES_NAMESPACE)
        # Gone, not only Terminating: test_examples_apply applies the same examples.
        wait_for(lambda: kube.get("v1", "Namespace", EXAMPLES_NAMESPACE) is None, timeout=180,
                 what=f"namespace {EXAMPLES_NAMESPACE} deleted")  # fmt: skip
        helm(kubeconfig, "uninstall", lifecycle.RELEASE,
             "--namespace", lifecycle.SYSTEM_NAMESPACE, "--wait", "--ignore-not-found")  # fmt: skip
        kube.delete("v1", "Secret", lifecycle.TLS_SECRET, namespace=lifecycle.SYSTEM_NAMESPACE)


def _fresh_shell_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in UNSET}
    env["PAITIENT_API_PORT"] = str(free_port())  # make up's front door, on a port of its own
    return env


def _output_of(ran: list[Ran], doc: str, needle: str) -> str:
    """The output of the block of ``doc`` whose code holds ``needle``."""
    return next(r.output for r in ran if r.block.where.startswith(doc) and needle in r.block.code)


@pytest.mark.timeout(3600)
def test_every_command_and_program_in_the_docs_runs_on_make_up(
    kubeconfig: Path, kube: Kube, tmp_path: Path
) -> None:
    if kubeconfig != LocalCluster().kubeconfig:
        missing("the docs' `make up` runs on the local cluster only")
    if Managed(lifecycle.FRONT_DOOR_RELAY, kubeconfig.parent).read_pid() is not None:
        missing("`make up`'s release runs on this cluster already")
    if kube.get("paitient.ai/v1alpha1", "Tenant", TENANT) is not None:
        missing(f"the README's tenant {TENANT} exists on this cluster already")
    if kube.get("v1", "Namespace", EXAMPLES_NAMESPACE) is not None:
        missing(f"namespace {EXAMPLES_NAMESPACE} (the examples') exists already")
    blocks = [b for b in all_blocks() if b.runs]
    assert [b.path.name for b in blocks[:2]] == ["README.md", "README.md"]
    env, ran = _fresh_shell_env(), []
    with OperatorProcess.others_paused(), _cleaned_up(kubeconfig, kube):
        for number, block in enumerate(blocks):
            result, env = run_block(block, number, env, tmp_path)
            ran.append(result)
            assert result.returncode == 0, (
                f"{block.where} ({block.lang}) exited {result.returncode}:\n{block.code}\n"
                f"--- its output (last 4000 characters):\n{result.output[-4000:]}"
            )
        # The README's model served for real: real vLLM on the real node, its pod Ready.
        pods = kube.list(
            "v1", "Pod", namespace=NAMESPACE, label_selector=f"{MD_LABEL}={DEPLOYMENT}"
        )
        assert [p["spec"]["nodeName"] for p in pods] == [NODE_NAME]
        conditions = {c["type"]: c["status"] for c in pods[0]["status"]["conditions"]}
        assert conditions["Ready"] == "True", conditions
        images = {c["name"]: c["image"] for c in pods[0]["spec"]["containers"]}
        assert any("vllm-cpu" in image for image in images.values()), images
        readme = _output_of(ran, "README.md", "client.generate(")
        assert "Subscription(tier='standard', current_usage=" in readme, readme
        # kubectl get md names the pvc:// model; kubectl apply -f examples/ made the examples.
        operator = _output_of(ran, "docs/operator.md", "kubectl get md -A")
        assert operator.count(MODEL_URI) >= 2 and "huatuo-o1" in operator, operator
        # The OpenAI SDKs, LangChain and curl reached the deployment through the local CA.
        assert DEPLOYMENT in _output_of(ran, "docs/openai.md", "SSL_CERT_FILE"), ran
