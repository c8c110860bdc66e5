"""The operator's CA on the local cluster: its key where neither a gateway's account nor the
front door's can read it; two processes making it at once end with one; two operator processes
rotating a due CA at once rotate it once; and a rotation never breaks trust: a gateway whose
certificate the old CA signed is still reached through the front door afterwards."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from paitient_common.kubeapi import Kube
from paitient_common.secrets import CA_BUNDLE_CONFIGMAP, CA_BUNDLE_KEY, CA_SECRET
from paitient_localcluster.stack.chart import CHART
from paitient_operator.certificates import x509
from paitient_operator.certificates.authority import Authority, build_ca_secret, parse_authority
from tests.integration.frontdoor_process import ApiProcess, call
from tests.integration.gateway_tls import SYSTEM, gateway
from tests.integration.operator_process import OperatorProcess
from tests.integration.stack_helpers import REPO
from tests.integration.tls_helpers import headers, model_deployment, routes_of, served_certificate
from tests.integration.waiting import wait_for

CA_NAMESPACE = f"{SYSTEM}-ca"
HELM = REPO / ".local" / "bin" / "helm"


def _may(kube: Kube, user: str, verb: str, namespace: str, name: str = "") -> bool:
    review = kube.request(
        "POST",
        "/apis/authorization.k8s.io/v1/subjectaccessreviews",
        {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {
                "user": user,
                "groups": ["system:serviceaccounts", "system:authenticated"],
                "resourceAttributes": {
                    "verb": verb, "resource": "secrets", "namespace": namespace, "name": name,
                },
            },
        },
    )  # fmt: skip
    return bool(review["status"].get("allowed"))


@pytest.fixture
def front_door_account(kube: Kube) -> Iterator[str]:
    """The front door's ServiceAccount and RBAC exactly as the Helm chart renders them for a
    release in the system namespace; the account's user name. Removed afterwards."""
    release = f"tlsrbac{uuid.uuid4().hex[:6]}"
    shown = [f"templates/frontdoor/{t}.yaml" for t in
             ("serviceaccount", "role", "rolebinding", "clusterrole", "clusterrolebinding")]  # fmt: skip
    done = subprocess.run(
        [str(HELM), "template", release, str(CHART), "--namespace", SYSTEM,
         *(a for t in shown for a in ("--show-only", t))],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    objects = [o for o in yaml.safe_load_all(done.stdout) if o]
    assert {o["kind"] for o in objects} >= {"ServiceAccount", "Role", "RoleBinding"}
    account = next(o for o in objects if o["kind"] == "ServiceAccount")["metadata"]["name"]
    for obj in objects:
        if obj["kind"] in ("ServiceAccount", "Role", "RoleBinding"):
            obj["metadata"].setdefault("namespace", SYSTEM)
        kube.create(obj)
    try:
        yield f"system:serviceaccount:{SYSTEM}:{account}"
    finally:
        for obj in reversed(objects):
            meta = obj["metadata"]
            kube.delete(
                obj["apiVersion"], obj["kind"], meta["name"], namespace=meta.get("namespace")
            )


def test_the_ca_key_is_where_no_gateway_or_front_door_can_read_it(
    stack: ApiProcess, stack_tenant: dict[str, str], kube: Kube, front_door_account: str
) -> None:
    assert kube.get("v1", "Secret", CA_SECRET, namespace=SYSTEM) is None
    assert kube.get("v1", "Secret", CA_SECRET, namespace=CA_NAMESPACE) is not None
    gateway_user = f"system:serviceaccount:{stack_tenant['namespace']}:paitient-gateway"
    # Both read the key records in the system namespace: why the CA lives elsewhere.
    for user in (gateway_user, front_door_account):
        assert _may(kube, user, "list", SYSTEM), user
        assert not _may(kube, user, "list", CA_NAMESPACE), user
        assert not _may(kube, user, "get", CA_NAMESPACE, CA_SECRET), user
        assert not _may(kube, user, "watch", CA_NAMESPACE), user


# -- two processes at once ------------------------------------------------------------------------

# One process's way to the CA: the operator's own AuthorityStore, on its first call.
MAKE_OR_READ = """
import json, sys
from paitient_common.kubeapi import Kube
from paitient_operator.certificates import x509
from paitient_operator.certificates.authority import AuthorityStore
from paitient_operator.config import TLSConfig
kubeconfig, namespace = sys.argv[1:3]
store = AuthorityStore(Kube.from_kubeconfig(kubeconfig), namespace, namespace, TLSConfig())
print("ready", flush=True)
sys.stdin.readline()  # both start here, at once
print(json.dumps(x509.fingerprint(store.current().signer.cert)))
"""


def test_two_processes_making_the_ca_at_once_end_with_one(
    kubeconfig: Path, kube: Kube, namespace: str
) -> None:
    """Two processes find no CA and both make one; the API server takes one create and the
    loser reads the winner's: both sign with the same CA, the one the Secret holds."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", MAKE_OR_READ, str(kubeconfig), namespace],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        for proc in procs:  # both imported and holding a client: then the go, to both
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready", proc.stderr
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("\n")
            proc.stdin.flush()
        outputs = [proc.communicate(timeout=60) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outputs]
    signers = {json.loads(out) for out, _ in outputs}
    secret = kube.get("v1", "Secret", CA_SECRET, namespace=namespace) or {}
    assert signers == {x509.fingerprint(parse_authority(secret).signer.cert)}
    published = kube.get("v1", "ConfigMap", CA_BUNDLE_CONFIGMAP, namespace=namespace) or {}
    assert x509.load_certificates(published["data"][CA_BUNDLE_KEY]) == list(
        parse_authority(secret).trusted
    )


def test_two_operators_rotating_a_due_ca_at_once_rotate_it_once_and_trust_holds(
    stack: ApiProcess,
    stack_tenant: dict[str, str],
    kube: Kube,
    kubeconfig: Path,
    tmp_path: Path,
    operator: OperatorProcess,
) -> None:
    """The CA is made due (a signer two days from its end, the CAs before it still in the
    bundle, as an earlier rotation would leave them); two operator processes start at once and
    both find it due at start. One rotation wins: the new CA, then every one before it. The
    gateway of deployment-123, whose certificate an older CA signed, keeps its certificate and
    is still reached through the front door; a deployment made afterwards gets one from the new
    CA and is reached too."""
    routes = routes_of(stack)
    served = gateway(routes, f"{stack_tenant['namespace']}/deployment-123", kube)
    kept = served_certificate(served)
    # Configured as the session's operator (`operator.env`): a different drain or autoscaling
    # setting renders another pod template, which would roll deployment-123 for that reason.
    operators = [
        OperatorProcess.for_cluster(kubeconfig, tmp_path / f"operator-{n}.log", operator.env)
        for n in range(2)
    ]
    body = {"deployment_id": "deployment-123", "prompt": "hi", "max_tokens": 2}
    name = "after-rotation"
    with OperatorProcess.others_paused():
        live = parse_authority(kube.get("v1", "Secret", CA_SECRET, namespace=CA_NAMESPACE) or {})
        now = datetime.now(UTC)
        due = x509.new_authority("a CA two days from its end", timedelta(days=2), now)
        before = Authority(due, (due.cert, *live.trusted), live.resource_version)
        kube.patch("v1", "Secret", CA_SECRET, build_ca_secret(CA_NAMESPACE, before),
                   namespace=CA_NAMESPACE)  # fmt: skip
        try:
            with ThreadPoolExecutor(2) as pool:  # both start, and find it due, at once
                list(pool.map(lambda o: o.start(), operators))
            # The one that wins the Lease rotates once it leads, after its start returned.
            after = wait_for(
                lambda: (a := parse_authority(
                    kube.get("v1", "Secret", CA_SECRET, namespace=CA_NAMESPACE) or {}
                )).signer.cert != due.cert and a,
                what="the due CA rotated",
            )  # fmt: skip
            published = wait_for(
                lambda: (c := kube.get("v1", "ConfigMap", CA_BUNDLE_CONFIGMAP, namespace=SYSTEM))
                and after.bundle_pem in c["data"][CA_BUNDLE_KEY] and c,
                what="the new bundle published",
            )  # fmt: skip

            def status(deployment: str) -> int:
                answer = call("POST", f"{stack.base_url}/generate",
                              {**body, "deployment_id": deployment}, headers(stack_tenant))  # fmt: skip
                return int(answer[0])

            def generated(deployment: str) -> bool:
                return status(deployment) == 200

            # The front door re-reads the bundle every few seconds: then, and every time after,
            # the old CA's gateway is reached.
            wait_for(lambda: generated("deployment-123"), what="the front door on the new bundle")
            statuses = [status("deployment-123") for _ in range(5)]
            # The statuses, and where the gateway was and is: a restarted one moved.
            where = f"{stack_tenant['namespace']}/deployment-123"
            assert statuses == [200] * 5, (statuses, served.url, gateway(routes, where, kube).url)
            still = served_certificate(served)
            kube.create(model_deployment(name, stack_tenant["namespace"]))
            fresh = gateway(routes, f"{stack_tenant['namespace']}/{name}", kube, timeout=120)
            issued = served_certificate(fresh)
            wait_for(lambda: generated(name), what="the new deployment through the front door")
            rotations = sum(o.log.read_text().count("rotated the gateway CA") for o in operators)
        finally:
            for operator in operators:
                operator.stop()
            kube.delete("paitient.ai/v1alpha1", "ModelDeployment", name,
                        namespace=stack_tenant["namespace"])  # fmt: skip

    assert rotations == 1, [o.tail() for o in operators]
    assert after.signer.cert not in (due.cert, *live.trusted)
    # One rotation, not two: the new CA, then the due one and every CA before it.
    assert list(after.trusted) == [after.signer.cert, due.cert, *live.trusted]
    assert x509.load_certificates(published["data"][CA_BUNDLE_KEY]) == list(after.trusted)
    assert still.serial_number == kept.serial_number  # not re-issued: still trusted
    assert x509.signed_by(kept, live.trusted) and not x509.signed_by(kept, [after.signer.cert])
    assert x509.signed_by(issued, [after.signer.cert])
