"""Reading a field manager's managedFields: which entry is ours, and whether it still holds
every field an apply would set (pure)."""

from __future__ import annotations

import json
from typing import Any

from paitient_operator.ownership import covers, owned_fields, owns, recorded_part


def k(**key: Any) -> str:
    """A path element naming a list entry by its key fields, as the API server writes it."""
    return "k:" + json.dumps(key, separators=(",", ":"))


# The shape of a Deployment's field set after an apply (format FieldsV1).
OURS: dict[str, Any] = {
    "f:metadata": {
        "f:labels": {".": {}, "f:app": {}},
        "f:ownerReferences": {k(uid="u-1"): {}},
    },
    "f:spec": {
        "f:replicas": {},
        "f:template": {
            "f:spec": {
                "f:containers": {
                    k(name="vllm"): {
                        ".": {},
                        "f:name": {},
                        "f:image": {},
                        "f:args": {},
                        "f:env": {k(name="HOME"): {".": {}, "f:name": {}, "f:value": {}}},
                    },
                },
                "f:tolerations": {},
            }
        },
    },
}

DESIRED: dict[str, Any] = {
    "metadata": {
        "labels": {"app": "m"},
        "ownerReferences": [{"uid": "u-1", "kind": "ModelDeployment", "name": "m"}],
    },
    "spec": {
        "replicas": 1,
        "template": {
            "spec": {
                "containers": [
                    {
                        "name": "vllm",
                        "image": "vllm:1",
                        "args": ["--port", "8000"],
                        "env": [{"name": "HOME", "value": "/tmp"}],
                    }
                ],
                "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}],
            }
        },
    },
}


def test_a_field_set_that_holds_every_field_covers_the_object() -> None:
    assert covers(OURS, DESIRED)


def test_a_field_another_writer_took_is_missing() -> None:
    taken = json.loads(json.dumps(OURS))
    del taken["f:spec"]["f:template"]["f:spec"]["f:containers"][k(name="vllm")]["f:image"]
    assert not covers(taken, DESIRED)


def test_a_list_entry_another_writer_removed_is_missing() -> None:
    removed = json.loads(json.dumps(OURS))
    del removed["f:spec"]["f:template"]["f:spec"]["f:containers"][k(name="vllm")]["f:env"]
    assert not covers(removed, DESIRED)


def test_a_new_entry_in_the_rendering_is_missing_until_applied() -> None:
    more = json.loads(json.dumps(DESIRED))
    more["spec"]["template"]["spec"]["containers"].append({"name": "gateway", "image": "gw:1"})
    assert not covers(OURS, more)


def test_an_atomic_list_is_held_whole_whatever_it_holds() -> None:
    longer = json.loads(json.dumps(DESIRED))
    longer["spec"]["template"]["spec"]["tolerations"].append({"key": "other"})
    assert covers(OURS, longer)
    lost = json.loads(json.dumps(OURS))
    del lost["f:spec"]["f:template"]["f:spec"]["f:tolerations"]
    assert not covers(lost, DESIRED)


def test_a_key_field_the_rendering_leaves_to_its_default_still_matches() -> None:
    fields: dict[str, Any] = {
        "f:spec": {"f:ports": {k(port=8443, protocol="TCP"): {".": {}, "f:port": {}}}}
    }
    assert covers(fields, {"spec": {"ports": [{"port": 8443}]}})
    assert not covers(fields, {"spec": {"ports": [{"port": 9999}]}})
    assert not covers(fields, {"spec": {"ports": [{"port": 8443, "protocol": "UDP"}]}})


def test_set_entries_match_by_value() -> None:
    fields: dict[str, Any] = {"f:metadata": {"f:finalizers": {".": {}, 'v:"a/b"': {}}}}
    assert covers(fields, {"metadata": {"finalizers": ["a/b"]}})
    assert not covers(fields, {"metadata": {"finalizers": ["a/b", "c/d"]}})


def test_empty_values_need_no_record() -> None:
    assert covers({"f:spec": {"f:x": {}}}, {"spec": {"x": 1, "args": [], "annotations": {}}})


def test_a_scalar_recorded_with_children_is_not_what_an_apply_records() -> None:
    assert not covers({"f:spec": {"f:x": {"f:y": {}}}}, {"spec": {"x": 1}})


def test_owns_a_path_itself_or_through_an_ancestor_held_whole() -> None:
    assert owns(OURS, ("spec", "template", "spec", "tolerations"))
    assert owns({"f:spec": {}}, ("spec", "replicas"))
    assert not owns(OURS, ("spec", "template", "spec", "nodeSelector"))
    assert not owns(None, ("spec",))


def entry(manager: str, operation: str, fields: Any, **extra: str) -> dict[str, Any]:
    return {
        "manager": manager,
        "operation": operation,
        "apiVersion": "apps/v1",
        "fieldsType": "FieldsV1",
        "fieldsV1": fields,
        **extra,
    }


def test_owned_fields_is_the_apply_entry_of_the_manager_on_the_object_itself() -> None:
    live = {
        "metadata": {
            "managedFields": [
                entry("paitient-operator", "Update", {"f:a": {}}),
                entry("paitient-operator", "Apply", {"f:b": {}}, subresource="status"),
                entry("kubectl", "Apply", {"f:c": {}}),
                entry("paitient-operator", "Apply", {"f:d": {}}),
            ]
        }
    }
    assert owned_fields(live, "paitient-operator", "apps/v1") == {"f:d": {}}
    assert owned_fields(live, "paitient-operator", "apps/v2") is None
    assert owned_fields({"metadata": {}}, "paitient-operator", "apps/v1") is None


def test_the_recorded_part_leaves_out_what_identifies_the_object() -> None:
    obj = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "a", "namespace": "n", "labels": {"x": "y"}},
        "spec": {},
    }
    assert recorded_part(obj) == {"metadata": {"labels": {"x": "y"}}, "spec": {}}
