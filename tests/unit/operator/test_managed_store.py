"""What the operator does for the store the chart runs: a password made once and never
rewritten, a certificate from its CA kept until due, and the store restarted (its pod template
stamped) only when the certificate it serves changed. Against an in-memory API."""

from __future__ import annotations

import base64
import copy
import hashlib
import tempfile
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from paitient_common.kubeapi import KubeError
from paitient_common.settings import SettingsError
from paitient_operator.certificates import x509
from paitient_operator.certificates.authority import AuthorityStore
from paitient_operator.config import OperatorConfig, load_config
from paitient_operator.managed_store import (
    CA_FILE_ENV,
    CERTIFICATE_ANNOTATION,
    PASSWORD_ENV,
    ManagedStore,
    acl_file,
    adopt_ca,
    adopt_password,
    adopt_store,
    ensure_certificate,
    ensure_password,
)
from tests.unit.operator.test_sync_child import field_set

NS = "paitient-system"
CONFIG = OperatorConfig.model_validate(
    {
        "systemNamespace": NS,
        "managedStore": {
            "service": "paitient-store",
            "statefulSet": "paitient-store",
            "passwordSecret": "paitient-store-auth",
            "tlsSecret": "paitient-store-tls",
            "issueCertificate": True,
        },
    }
)


def merge(target: Any, patch: Any) -> Any:
    """RFC 7386 merge patch, as the API server applies it."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge(out.get(key), value)
    return out


class Api:
    """Objects by (kind, namespace, name); every write recorded."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.writes: list[tuple[str, str, str]] = []

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> Any:
        return copy.deepcopy(self.objects.get((kind, namespace or "", name)))

    def create(self, obj: dict[str, Any]) -> Any:
        key = (obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        if key in self.objects:
            raise KubeError(409, "AlreadyExists", "exists")
        self.writes.append(("create", key[0], key[2]))
        self.objects[key] = copy.deepcopy(obj)
        return copy.deepcopy(obj)

    def apply(self, obj: dict[str, Any], *, field_manager: str, force: bool) -> Any:
        """Server-Side Apply, as far as these objects need: merged, the applier's field set
        recorded."""
        key = (obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        self.writes.append(("apply", key[0], key[2]))
        stored = merge(self.objects.get(key) or {}, obj)
        recorded = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}
        recorded["metadata"] = {
            k: v for k, v in obj["metadata"].items() if k not in ("name", "namespace")
        }
        stored["metadata"]["managedFields"] = [
            {"manager": field_manager, "operation": "Apply", "apiVersion": obj["apiVersion"],
             "fieldsType": "FieldsV1", "fieldsV1": field_set(recorded)}
        ]  # fmt: skip
        self.objects[key] = stored
        return copy.deepcopy(stored)

    def patch(self, api_version: str, kind: str, name: str, patch: Any, **kw: Any) -> Any:
        key = (kind, kw.get("namespace") or "", name)
        self.writes.append(("patch", kind, name))
        self.objects[key] = merge(self.objects[key], patch)
        return copy.deepcopy(self.objects[key])


def _secret_text(api: Api, name: str, key: str) -> str:
    data = api.objects[("Secret", NS, name)]["data"]
    return base64.b64decode(data[key]).decode()


def test_the_password_is_made_once_and_the_server_keeps_only_its_hash() -> None:
    api = Api()
    password = ensure_password(api, CONFIG)  # type: ignore[arg-type]
    assert password and len(password) >= 32
    acl = _secret_text(api, "paitient-store-auth", "users.acl")
    assert password not in acl
    assert acl == acl_file(password)
    assert hashlib.sha256(password.encode()).hexdigest() in acl
    # Another start (or replica) keeps it: never rewritten, every client's password stays.
    assert ensure_password(api, CONFIG) == password  # type: ignore[arg-type]
    assert api.writes == [("create", "Secret", "paitient-store-auth")]
    assert ensure_password(api, OperatorConfig.model_validate({})) is None  # type: ignore[arg-type]


def test_a_replica_that_loses_the_race_takes_the_winners_password() -> None:
    api = Api()
    winner = ensure_password(api, CONFIG)  # type: ignore[arg-type]
    original_get = api.get
    calls = {"n": 0}

    def absent_first(*args: Any, **kw: Any) -> Any:  # it read before the winner wrote
        calls["n"] += 1
        return None if calls["n"] == 1 else original_get(*args, **kw)

    api.get = absent_first  # type: ignore[method-assign]
    assert ensure_password(api, CONFIG) == winner  # type: ignore[arg-type]


def test_the_first_operator_pod_adopts_the_password_it_made() -> None:
    environ: dict[str, str] = {}
    adopt_password("made-now", environ)
    assert environ == {PASSWORD_ENV: "made-now"}
    adopt_password("another", environ)  # the pod's own (from the Secret) wins
    assert environ == {PASSWORD_ENV: "made-now"}


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def store() -> tuple[ManagedStore, Api, Clock]:
    api, clock = Api(), Clock()
    api.objects[("StatefulSet", NS, "paitient-store")] = {
        "metadata": {"name": "paitient-store"},
        "spec": {"template": {"metadata": {"annotations": {"checksum/config": "c"}}}},
    }
    authorities = AuthorityStore(api, f"{NS}-ca", NS, CONFIG.tls, clock)  # type: ignore[arg-type]
    return ManagedStore(api, CONFIG, authorities, clock), api, clock  # type: ignore[arg-type]


def _stamp(api: Api) -> str | None:
    template = api.objects[("StatefulSet", NS, "paitient-store")]["spec"]["template"]
    annotations: dict[str, str] = template["metadata"]["annotations"]
    assert annotations["checksum/config"] == "c"  # the chart's own stays
    return annotations.get(CERTIFICATE_ANNOTATION)


def test_the_stores_certificate_is_issued_kept_and_renewed_with_a_restart_each_time(
    store: tuple[ManagedStore, Api, Clock],
) -> None:
    managed, api, clock = store
    managed.sync()
    cert = x509.KeyPair(
        _secret_text(api, "paitient-store-tls", "tls.crt"),
        _secret_text(api, "paitient-store-tls", "tls.key"),
    ).cert
    assert sorted(x509.names_of(cert)) == sorted(
        ["paitient-store", f"paitient-store.{NS}", f"paitient-store.{NS}.svc",
         f"paitient-store.{NS}.svc.cluster.local"]
    )  # fmt: skip
    bundle = x509.load_certificates(_secret_text(api, "paitient-store-tls", "ca.crt"))
    assert x509.signed_by(cert, bundle)  # clients verify with ca.crt of the same Secret
    first = _stamp(api)
    assert first is not None
    api.writes.clear()
    managed.sync()  # nothing changed: nothing written, no restart
    assert api.writes == []
    clock.now += CONFIG.tls.certificate_lifetime - CONFIG.tls.renew_before + timedelta(seconds=1)
    managed.sync()  # due: a new certificate, and the store restarted to load it
    assert ("apply", "Secret", "paitient-store-tls") in api.writes
    assert _stamp(api) not in (None, first)


def test_a_certificate_written_by_someone_else_only_restarts_the_store(
    store: tuple[ManagedStore, Api, Clock],
) -> None:
    managed, api, _ = store
    managed.config = CONFIG.model_copy(
        update={
            "managed_store": CONFIG.managed_store.model_copy(update={"issue_certificate": False})
        }
    )
    managed.sync()  # cert-manager has not written it yet: nothing to do
    assert api.writes == [] and _stamp(api) is None
    api.objects[("Secret", NS, "paitient-store-tls")] = {
        "metadata": {"name": "paitient-store-tls"},
        "data": {"tls.crt": base64.b64encode(b"cert-manager's").decode()},
    }
    managed.sync()
    assert api.writes == [("patch", "StatefulSet", "paitient-store")]


def test_the_first_operator_makes_the_certificate_its_own_settings_name(tmp_path: Any) -> None:
    """Its pod started before the store's Secrets existed: its password variable is empty and
    its CA file (an optional mount) absent. It makes both and uses them."""
    api, clock = Api(), Clock()
    mounted = tmp_path / "mount" / "ca.crt"
    environ = {CA_FILE_ENV: str(mounted)}
    secret = ensure_certificate(api, CONFIG, clock.now)  # type: ignore[arg-type]
    assert secret is not None
    adopt_ca(secret, environ, tmp_path)
    assert environ[CA_FILE_ENV] == str(tmp_path / "paitient-store-ca.crt")
    bundle = x509.load_certificates((tmp_path / "paitient-store-ca.crt").read_text())
    cert = x509.KeyPair(_secret_text(api, "paitient-store-tls", "tls.crt"),
                        _secret_text(api, "paitient-store-tls", "tls.key")).cert  # fmt: skip
    assert x509.signed_by(cert, bundle)
    # Made once: a second replica finds it (and its mount, once there, wins).
    api.writes.clear()
    assert ensure_certificate(api, CONFIG, clock.now) == secret  # type: ignore[arg-type]
    assert api.writes == []
    mounted.parent.mkdir()
    mounted.write_text("the kubelet's copy")
    environ = {CA_FILE_ENV: str(mounted)}
    adopt_ca(secret, environ, tmp_path)
    assert environ == {CA_FILE_ENV: str(mounted)}


def test_the_first_operator_loads_its_settings_around_making_the_store_secrets(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """main's order: the configuration unchecked (its store's password variable empty, its CA
    mount absent), the store's Secrets made and adopted, then the checked configuration."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where adopt_store writes the CA
    environ = {
        "PAITIENT_SYSTEM_NAMESPACE": NS,
        "PAITIENT_MANAGED_STORE_SERVICE": "paitient-store",
        "PAITIENT_MANAGED_STORE_STATEFUL_SET": "paitient-store",
        "PAITIENT_MANAGED_STORE_PASSWORD_SECRET": "paitient-store-auth",
        "PAITIENT_MANAGED_STORE_TLS_SECRET": "paitient-store-tls",
        "PAITIENT_MANAGED_STORE_ISSUE_CERTIFICATE": "true",
        "PAITIENT_STORE_URL": f"rediss://paitient-store.{NS}.svc:6379/0",
        "PAITIENT_STORE_PASSWORD": "",  # the optional Secret did not exist yet
        CA_FILE_ENV: str(tmp_path / "mount" / "ca.crt"),
    }
    with pytest.raises(SettingsError, match=f"^store: {CA_FILE_ENV}: no such file"):
        load_config(environ)
    bootstrap = load_config(environ, check_store=False)
    adopt_store(Api(), bootstrap, environ)  # type: ignore[arg-type]
    config = load_config(environ)
    settings = config.store.settings()
    assert settings is not None and settings.tls
    assert settings.password == environ[PASSWORD_ENV]
    assert settings.ca_file == tmp_path / "paitient-store-ca.crt"


def test_a_certificate_someone_else_writes_is_waited_for(tmp_path: Any) -> None:
    api, clock = Api(), Clock()
    by_cert_manager = CONFIG.model_copy(
        update={
            "managed_store": CONFIG.managed_store.model_copy(update={"issue_certificate": False})
        }
    )
    assert ensure_certificate(api, by_cert_manager, clock.now) is None  # type: ignore[arg-type]
    environ = {CA_FILE_ENV: str(tmp_path / "absent.crt")}
    adopt_store(api, by_cert_manager, environ)  # type: ignore[arg-type]
    assert environ[CA_FILE_ENV] == str(tmp_path / "absent.crt")  # it fails at load, saying so
    assert environ[PASSWORD_ENV]  # the password is the operator's to make in any case
