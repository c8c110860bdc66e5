"""The queue of deployments to reconcile: one entry per key however many events, never two
workers on one key, a key changed while reconciled comes back once (workqueue.py)."""

from __future__ import annotations

import threading

import pytest

from paitient_operator.workqueue import ShutDown, WorkQueue


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_many_adds_of_one_key_are_one_entry_in_order_of_first_add() -> None:
    queue: WorkQueue[str] = WorkQueue()
    for key in ["a", "b", "a", "a", "c", "b"]:
        queue.add(key)
    assert len(queue) == 3
    assert [queue.get(0), queue.get(0), queue.get(0)] == ["a", "b", "c"]
    assert queue.get(0) is None


def test_a_key_added_while_busy_comes_back_once_when_done_and_not_before() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    assert queue.get(0) == "a"
    queue.add("a")
    queue.add("a")
    assert queue.get(0) is None  # no second worker on "a" while the first has it
    assert not queue.idle()
    queue.done("a")
    assert queue.get(0) == "a"
    queue.done("a")
    assert queue.idle()


def test_add_after_waits_for_its_time() -> None:
    clock = Clock()
    queue: WorkQueue[str] = WorkQueue(clock)
    queue.add_after("a", 5.0)
    assert queue.get(0) is None and not queue.idle()
    clock.now = 5.0
    assert queue.get(0) == "a"


def test_shut_down_wakes_a_waiting_worker() -> None:
    queue: WorkQueue[str] = WorkQueue()
    stopped = threading.Event()

    def worker() -> None:
        with pytest.raises(ShutDown):
            queue.get()
        stopped.set()

    thread = threading.Thread(target=worker)
    thread.start()
    queue.shut_down()
    thread.join(5)
    assert stopped.is_set()
