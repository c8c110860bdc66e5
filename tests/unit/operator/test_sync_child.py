"""sync_child by Server-Side Apply: what is applied, and when nothing is (pure, against an
in-memory API server that keeps managedFields as Server-Side Apply does for these shapes)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from paitient_operator.builders.metadata import SPEC_HASH_ANNOTATION, spec_hash
from paitient_operator.children import FIELD_MANAGER, applied_config, is_current, sync_child

Obj = dict[str, Any]
TOLERATIONS = ("spec", "template", "spec", "tolerations")
OURS = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
THEIRS = {"key": "example.com/dedicated", "operator": "Exists", "effect": "NoSchedule"}


def deployment(**spec: Any) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "m", "namespace": "ns", "labels": {"app": "m"}},
        "spec": {
            "template": {"spec": {"containers": [{"name": "vllm", "image": "vllm:1"}]}},
            **spec,
        },
    }


def gpu_deployment(**spec: Any) -> Obj:
    obj = deployment(**spec)
    obj["spec"]["template"]["spec"]["tolerations"] = [OURS]
    return obj


def field_set(value: Any) -> Obj:
    """The field set an apply of ``value`` records, maps granular and lists atomic."""
    if isinstance(value, dict):
        return {f"f:{k}": field_set(v) for k, v in value.items()}
    return {}


def _at(obj: Obj, path: tuple[str, ...]) -> Any:
    for name in path:
        obj = obj[name]
    return obj


class ApplyingApiServer:
    """Objects by name; an apply merges maps, replaces lists, runs ``admission`` on the result
    and records the applier's field set; ``update`` is another writer's change, which takes
    the field from every other manager. Records every call."""

    def __init__(self, admission: Callable[[Obj], None] | None = None) -> None:
        self.objects: dict[str, Obj] = {}
        self.calls: list[str] = []
        self.admission = admission

    def get(self, api_version: str, kind: str, name: str, **_: Any) -> Obj | None:
        self.calls.append("get")
        return copy.deepcopy(self.objects.get(name))

    def apply(self, obj: Obj, *, field_manager: str, force: bool) -> Obj:
        self.calls.append("apply")
        assert field_manager == FIELD_MANAGER and force
        previous = self.objects.get(obj["metadata"]["name"]) or {}
        stored = _merged(previous, obj)
        if self.admission:
            self.admission(stored)
        recorded = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}
        recorded["metadata"] = {
            k: v for k, v in obj["metadata"].items() if k not in ("name", "namespace")
        }
        others = [
            e for e in (previous.get("metadata") or {}).get("managedFields", [])
            if e["manager"] != field_manager
        ]  # fmt: skip
        mine = {"manager": field_manager, "operation": "Apply", "apiVersion": obj["apiVersion"],
                "fieldsType": "FieldsV1", "fieldsV1": field_set(recorded)}  # fmt: skip
        stored["metadata"]["managedFields"] = [*others, mine]
        self.objects[obj["metadata"]["name"]] = stored
        return copy.deepcopy(stored)

    def update(self, name: str, path: tuple[str, ...], value: Any, manager: str) -> None:
        obj = self.objects[name]
        _at(obj, path[:-1])[path[-1]] = value
        for entry in obj["metadata"]["managedFields"]:
            _forget(entry["fieldsV1"], path)
        obj["metadata"]["managedFields"].append(
            {"manager": manager, "operation": "Update", "apiVersion": obj["apiVersion"],
             "fieldsType": "FieldsV1", "fieldsV1": field_set(_nest(path, value))}
        )  # fmt: skip


def _forget(fields: Obj, path: tuple[str, ...]) -> None:
    """Take ``path`` out of a field set; a parent left with no children goes too (it was
    never a member itself, only the way to its children)."""
    child = fields.get(f"f:{path[0]}")
    if child is None:
        return
    if len(path) > 1 and child:
        _forget(child, path[1:])
        if child:
            return
    del fields[f"f:{path[0]}"]


def _merged(live: Any, applied: Any) -> Any:
    if isinstance(live, dict) and isinstance(applied, dict):
        out = copy.deepcopy(live)
        for key, value in applied.items():
            out[key] = _merged(live.get(key), value)
        return out
    return copy.deepcopy(applied)


def _nest(path: tuple[str, ...], value: Any) -> Obj:
    for name in reversed(path):
        value = {name: value}
    return dict(value)


def add_their_toleration(obj: Obj) -> None:
    """What a mutating admission policy does to every write of the Deployment."""
    tolerations = obj["spec"]["template"]["spec"].setdefault("tolerations", [])
    if THEIRS not in tolerations:
        tolerations.append(THEIRS)


def test_created_by_apply_then_nothing_is_written() -> None:
    api = ApplyingApiServer()
    assert sync_child(api, deployment(), cached=None)[0] == "created"  # type: ignore[arg-type]
    assert sync_child(api, deployment())[0] == "unchanged"  # type: ignore[arg-type]
    assert api.calls == ["apply", "get"]


def test_the_applied_config_carries_the_hash_of_the_rendering_and_no_status() -> None:
    desired = {**deployment(), "status": {"replicas": 1}}
    applied = applied_config(desired, None)
    assert "status" not in applied
    assert applied["metadata"]["annotations"][SPEC_HASH_ANNOTATION] == spec_hash(deployment())


def test_a_cached_copy_that_matches_costs_no_request() -> None:
    api = ApplyingApiServer()
    _, live = sync_child(api, deployment(), cached=None)  # type: ignore[arg-type]
    api.calls.clear()
    assert sync_child(api, deployment(), cached=live)[0] == "unchanged"  # type: ignore[arg-type]
    assert api.calls == []


def test_a_stale_cache_that_missed_a_creation_costs_one_apply() -> None:
    api = ApplyingApiServer()
    sync_child(api, deployment(), cached=None)  # type: ignore[arg-type]
    outcome, obj = sync_child(api, deployment(), cached=None)  # type: ignore[arg-type]
    assert (outcome, obj["spec"]) == ("created", api.objects["m"]["spec"])
    assert api.calls == ["apply", "apply"]


def test_what_admission_adds_to_the_operators_write_stays_and_is_no_difference() -> None:
    api = ApplyingApiServer(admission=add_their_toleration)
    sync_child(api, gpu_deployment(), cached=None)  # type: ignore[arg-type]
    assert _at(api.objects["m"], TOLERATIONS) == [OURS, THEIRS]
    for _ in range(3):
        assert sync_child(api, gpu_deployment())[0] == "unchanged"  # type: ignore[arg-type]
    assert api.calls.count("apply") == 1
    assert _at(api.objects["m"], TOLERATIONS) == [OURS, THEIRS]


def test_a_field_another_writer_changed_is_taken_back() -> None:
    api = ApplyingApiServer()
    sync_child(api, deployment(replicas=2), cached=None)  # type: ignore[arg-type]
    api.update("m", ("spec", "replicas"), 5, manager="kubectl-edit")
    assert sync_child(api, deployment(replicas=2))[0] == "updated"  # type: ignore[arg-type]
    assert api.objects["m"]["spec"]["replicas"] == 2
    assert sync_child(api, deployment(replicas=2))[0] == "unchanged"  # type: ignore[arg-type]


def test_what_another_writer_adds_beside_the_operators_fields_is_no_difference() -> None:
    api = ApplyingApiServer()
    sync_child(api, deployment(), cached=None)  # type: ignore[arg-type]
    api.update("m", ("metadata", "annotations", "touched"), "yes", manager="kubectl")
    assert sync_child(api, deployment())[0] == "unchanged"  # type: ignore[arg-type]


def test_a_new_rendering_is_applied() -> None:
    api = ApplyingApiServer()
    sync_child(api, deployment(replicas=1), cached=None)  # type: ignore[arg-type]
    assert sync_child(api, deployment(replicas=3))[0] == "updated"  # type: ignore[arg-type]
    assert api.objects["m"]["spec"]["replicas"] == 3


def test_a_child_written_before_apply_is_applied_once() -> None:
    api = ApplyingApiServer()
    api.objects["m"] = deployment()  # as a merge patch left it: no field set of ours
    assert sync_child(api, deployment())[0] == "updated"  # type: ignore[arg-type]
    assert sync_child(api, deployment())[0] == "unchanged"  # type: ignore[arg-type]


def test_a_shared_list_held_by_another_writer_with_our_entries_is_left_to_it() -> None:
    api = ApplyingApiServer()
    sync_child(api, gpu_deployment(), cached=None)  # type: ignore[arg-type]
    api.update("m", TOLERATIONS, [OURS, THEIRS], manager="toleration-controller")
    live = api.objects["m"]
    assert "tolerations" not in applied_config(gpu_deployment(), live)["spec"]["template"]["spec"]
    assert sync_child(api, gpu_deployment())[0] == "unchanged"  # type: ignore[arg-type]
    assert _at(api.objects["m"], TOLERATIONS) == [OURS, THEIRS]


def test_a_shared_list_without_our_entries_is_taken_back() -> None:
    api = ApplyingApiServer()
    sync_child(api, gpu_deployment(), cached=None)  # type: ignore[arg-type]
    api.update("m", TOLERATIONS, [THEIRS], manager="kubectl-edit")
    assert sync_child(api, gpu_deployment())[0] == "updated"  # type: ignore[arg-type]
    assert _at(api.objects["m"], TOLERATIONS) == [OURS]


def test_an_atomic_list_that_is_not_shared_is_taken_back_whole() -> None:
    api = ApplyingApiServer()
    rule: Obj = {"from": [{"podSelector": {}}]}
    policy = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
              "metadata": {"name": "m", "namespace": "ns"}, "spec": {"ingress": [rule]}}  # fmt: skip
    sync_child(api, policy, cached=None)  # type: ignore[arg-type]
    api.update("m", ("spec", "ingress"), [rule, {"from": []}], manager="kubectl-edit")
    assert sync_child(api, policy)[0] == "updated"  # type: ignore[arg-type]
    assert api.objects["m"]["spec"]["ingress"] == [rule]


def test_replicas_handed_to_an_autoscaler_keep_their_value_until_it_writes_them() -> None:
    api = ApplyingApiServer()
    sync_child(api, deployment(replicas=3), cached=None)  # type: ignore[arg-type]
    # An autoscaler now targets the Deployment: the rendering leaves replicas out.
    assert applied_config(deployment(), api.objects["m"])["spec"]["replicas"] == 3
    sync_child(api, deployment())  # type: ignore[arg-type]
    assert api.objects["m"]["spec"]["replicas"] == 3
    assert sync_child(api, deployment())[0] == "unchanged"  # type: ignore[arg-type]
    api.update("m", ("spec", "replicas"), 4, manager="horizontal-pod-autoscaler")
    assert "replicas" not in applied_config(deployment(), api.objects["m"])["spec"]
    assert sync_child(api, deployment())[0] == "unchanged"  # type: ignore[arg-type]
    assert api.objects["m"]["spec"]["replicas"] == 4


def test_is_current_needs_the_same_rendering_and_every_field_still_held() -> None:
    api = ApplyingApiServer()
    _, live = sync_child(api, deployment(), cached=None)  # type: ignore[arg-type]
    assert is_current(applied_config(deployment(), live), live)
    assert not is_current(applied_config(deployment(replicas=2), live), live)
    live["metadata"]["managedFields"] = []
    assert not is_current(applied_config(deployment(), live), live)
