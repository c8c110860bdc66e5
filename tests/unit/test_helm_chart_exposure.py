"""The front door reached from outside the cluster: an Ingress, a Gateway API HTTPRoute with the
BackendTLSPolicy that makes the Gateway re-encrypt and verify, a TLSRoute that passes TLS through
to a certificate carrying its hostnames. All off by default; each validated against the
Kubernetes or the Gateway API's own schemas (v1.5.0, standard channel)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.unit.chart_schemas import validate
from tests.unit.test_helm_chart import (
    CHART,
    ISSUER_CA,
    NAMESPACE,
    RELEASE,
    Obj,
    by_kind,
    helm,
    one,
    operator_config,
    render,
)

GATEWAY = [{"name": "public", "namespace": "gateway-system", "sectionName": "https"}]
SERVICE = f"paitient-api.{NAMESPACE}.svc"


def _fails(values: Obj) -> str:
    result = helm("template", RELEASE, str(CHART), "--values", "-", stdin=json.dumps(values))
    assert result.returncode != 0
    return result.stderr


def test_nothing_is_exposed_by_default() -> None:
    kinds = {o["kind"] for o in render({})}
    assert not kinds & {"Ingress", "HTTPRoute", "BackendTLSPolicy", "TLSRoute"}


def test_the_ingress_routes_its_hosts_to_the_services_https_port() -> None:
    values = {
        "frontDoor": {
            "ingress": {
                "enabled": True,
                "className": "nginx",
                "annotations": {"nginx.ingress.kubernetes.io/backend-protocol": "HTTPS"},
                "hosts": ["api.clinic.example"],
                "tlsSecretName": "public-cert",
            }
        }
    }
    objects = render(values)
    ingress = one(objects, "Ingress", "paitient-api")
    validate(ingress, "Ingress")
    spec = ingress["spec"]
    assert spec["ingressClassName"] == "nginx"
    assert spec["tls"] == [{"secretName": "public-cert", "hosts": ["api.clinic.example"]}]
    (rule,) = spec["rules"]
    assert rule["host"] == "api.clinic.example"
    (path,) = rule["http"]["paths"]
    assert (path["path"], path["pathType"]) == ("/", "Prefix")
    assert path["backend"]["service"] == {"name": "paitient-api", "port": {"name": "https"}}
    service = one(objects, "Service", "paitient-api")
    assert service["spec"]["ports"][0]["name"] == "https"
    assert ingress["metadata"]["annotations"] == values["frontDoor"]["ingress"]["annotations"]
    plain = {"frontDoor": {"tls": {"enabled": False}, "ingress": {"enabled": True, "hosts": ["a"]}}}
    (path,) = one(render(plain), "Ingress", "paitient-api")["spec"]["rules"][0]["http"]["paths"]
    assert path["backend"]["service"]["port"] == {"name": "http"}
    assert "name at least one host" in _fails({"frontDoor": {"ingress": {"enabled": True}}})


def test_the_http_route_re_encrypts_to_the_front_door_and_verifies_it() -> None:
    values = {
        "frontDoor": {
            "httpRoute": {"enabled": True, "parentRefs": GATEWAY, "hostnames": ["api.example"]}
        }
    }
    objects = render(values)
    route = one(objects, "HTTPRoute", "paitient-api")
    policy = one(objects, "BackendTLSPolicy", "paitient-api")
    for obj in (route, policy):
        validate(obj, obj["kind"])
    assert route["spec"]["parentRefs"] == GATEWAY
    assert route["spec"]["hostnames"] == ["api.example"]
    (rule,) = route["spec"]["rules"]
    assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/"}}]
    service = one(objects, "Service", "paitient-api")
    assert rule["backendRefs"] == [
        {"name": "paitient-api", "port": service["spec"]["ports"][0]["port"]}
    ]
    assert policy["spec"]["targetRefs"] == [
        {"group": "", "kind": "Service", "name": "paitient-api"}
    ]
    # The operator signs the front door's certificate for the Service's name; its CA bundle is
    # the ConfigMap the operator publishes in the release namespace.
    assert policy["spec"]["validation"] == {
        "hostname": SERVICE,
        "caCertificateRefs": [{"group": "", "kind": "ConfigMap", "name": "paitient-ca-bundle"}],
    }
    public = {
        "frontDoor": {
            "tls": {"certManager": {"issuerName": "letsencrypt"}},
            "httpRoute": {"enabled": True, "parentRefs": GATEWAY},
        }
    }
    validation = one(render(public), "BackendTLSPolicy", "paitient-api")["spec"]["validation"]
    assert validation == {"hostname": SERVICE, "wellKnownCACertificates": "System"}
    plain = {
        "frontDoor": {
            "tls": {"enabled": False},
            "httpRoute": {"enabled": True, "parentRefs": GATEWAY},
        }
    }
    assert not by_kind(render(plain), "BackendTLSPolicy")
    assert "parentRefs: name the Gateway" in _fails({"frontDoor": {"httpRoute": {"enabled": True}}})


def test_the_tls_route_passes_tls_through_to_a_certificate_that_names_its_hosts(
    tmp_path: Path,
) -> None:
    passthrough = [{"name": "public", "namespace": "gateway-system", "sectionName": "tls"}]
    values = {
        "frontDoor": {
            "tlsRoute": {
                "enabled": True,
                "parentRefs": passthrough,
                "hostnames": ["api.clinic.example"],
            }
        }
    }
    objects = render(values)
    route = one(objects, "TLSRoute", "paitient-api")
    validate(route, "TLSRoute")
    assert route["spec"]["hostnames"] == ["api.clinic.example"]
    assert route["spec"]["rules"] == [{"backendRefs": [{"name": "paitient-api", "port": 443}]}]
    config = operator_config(objects, tmp_path, "paitient-operator")
    assert "api.clinic.example" in config.front_door_certificate.names
    assert SERVICE in config.front_door_certificate.names
    plain = json.loads(json.dumps(values))
    plain["frontDoor"]["tls"] = {"enabled": False}
    assert "frontDoor.tls.enabled must be true" in _fails(plain)
    nameless = {"frontDoor": {"tlsRoute": {"enabled": True, "parentRefs": passthrough}}}
    assert "hostnames: name at least one host" in _fails(nameless)


@pytest.mark.parametrize(
    ("tls", "issuer"),
    [
        ({}, "operator"),
        ({"existingSecret": "mine"}, "existing"),
        ({"certManager": {"issuerName": "letsencrypt"}}, "cert-manager"),
        ({"enabled": False}, None),
    ],
)
def test_tls_on_the_front_door_by_default_and_who_signs_it(
    tls: Obj, issuer: str | None, tmp_path: Path
) -> None:
    objects = render({"frontDoor": {"tls": tls, "service": {"port": 443}}})
    config = operator_config(objects, tmp_path, "paitient-operator")
    certificates = by_kind(objects, "Certificate")
    pod = one(objects, "Deployment", "paitient-api")["spec"]["template"]["spec"]
    serves_tls = any(a.startswith("--tls-cert-file=") for a in pod["containers"][0]["args"])
    assert serves_tls == (issuer is not None)
    assert bool(config.front_door_certificate.secret_name) == (issuer == "operator")
    assert bool(certificates) == (issuer == "cert-manager")


def test_the_gateways_cert_manager_issuer_signs_the_front_door_too(tmp_path: Path) -> None:
    values = {
        "operator": {
            "config": {
                "tls": {
                    "issuer": "cert-manager",
                    "certManager": {
                        "issuerName": "clinic-ca",
                        "issuerKind": "Issuer",
                        "caBundle": ISSUER_CA,
                    },
                }
            }
        },
        "frontDoor": {"tls": {"dnsNames": ["localhost"]}},
    }
    objects = render(values)
    (certificate,) = by_kind(objects, "Certificate")
    validate(certificate, "Certificate")
    assert certificate["spec"]["issuerRef"] == {
        "name": "clinic-ca",
        "kind": "Issuer",
        "group": "cert-manager.io",
    }
    assert certificate["spec"]["dnsNames"][0] == "localhost"
    assert not operator_config(objects, tmp_path, "paitient-operator").front_door_certificate.names
