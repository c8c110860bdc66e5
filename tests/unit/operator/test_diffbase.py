import kopf

from paitient_operator.diffbase import InMemoryDiffBaseStorage


def body(uid: str, replicas: int) -> kopf.Body:
    return kopf.Body({"metadata": {"uid": uid, "name": "m"}, "spec": {"replicas": replicas}})


def test_stores_the_essence_in_memory_and_writes_nothing_to_the_patch() -> None:
    storage = InMemoryDiffBaseStorage()
    first = body("u1", 1)
    assert storage.fetch(body=first) is None  # never handled: kopf sees a creation
    patch = kopf.Patch()
    essence = storage.build(body=first)
    storage.store(body=first, patch=patch, essence=essence)
    assert not patch  # no bookkeeping write
    assert storage.fetch(body=body("u1", 1)) == {"spec": {"replicas": 1}}
    assert storage.fetch(body=body("u2", 1)) is None  # per object


def test_a_status_only_copy_has_the_same_essence() -> None:
    storage = InMemoryDiffBaseStorage()
    handled = body("u1", 1)
    storage.store(body=handled, patch=kopf.Patch(), essence=storage.build(body=handled))
    later = kopf.Body({**dict(handled), "status": {"phase": "Ready"}})
    assert storage.build(body=later) == storage.fetch(body=later)


def test_forget_drops_a_deleted_object() -> None:
    storage = InMemoryDiffBaseStorage()
    handled = body("u1", 1)
    storage.store(body=handled, patch=kopf.Patch(), essence=storage.build(body=handled))
    storage.forget("u1")
    assert storage.fetch(body=handled) is None
    assert len(storage) == 0
