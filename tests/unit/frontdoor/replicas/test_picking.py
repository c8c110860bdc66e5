"""The picker's pure parts: what a request's prefix is, what an EndpointSlice says, how a
replica's load is estimated, and the router that puts them together."""

from __future__ import annotations

from typing import Any

from paitient_api.replicas.endpoints import Endpoint, by_deployment, parse_slice
from paitient_api.replicas.loads import LoadBoard
from paitient_api.replicas.prefix import leading_text, prefix_key
from paitient_api.replicas.router import ReplicaRouter, routing_of
from paitient_api.routing import GatewayRoute, Route
from paitient_common.gateway_load import GatewayLoad

SYSTEM = "You are the discharge-letter assistant of St. Elsewhere. " * 20


def chat(question: str, system: str = SYSTEM) -> dict[str, Any]:
    return {
        "messages": [{"role": "system", "content": system}, {"role": "user", "content": question}]
    }


# -- prefix ----------------------------------------------------------------------------------------


def test_chat_prefix_is_the_messages_in_order_with_roles_cut_at_the_length() -> None:
    text = leading_text(chat("why?"), 30)
    assert text == ("system\n" + SYSTEM)[:30]
    whole = leading_text(chat("why?", system="short"), 1000)
    assert whole == "system\nshort\nuser\nwhy?\n"


def test_content_parts_count_by_their_text() -> None:
    body = {"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"},
                                                       {"type": "image_url", "image_url": {}}]}]}  # fmt: skip
    assert leading_text(body, 100) == "user\nhi[image_url]\n"


def test_completion_prompts_text_batches_and_token_ids() -> None:
    assert leading_text({"prompt": "abcdef"}, 3) == "abc"
    assert leading_text({"prompt": ["first", "second"]}, 100) == "first"
    assert leading_text({"prompt": [1, 2, 3, 4]}, 100) == "[1, 2, 3, 4]"
    assert leading_text({"prompt": [1, 2, 3, 4]}, 5) == "[1, 2"  # characters, like text
    assert leading_text({"prompt": [[5, 6], [7]]}, 100) == "[5, 6]"
    assert leading_text({}, 10) == leading_text({"prompt": 3}, 10) == ""


def test_questions_after_a_shared_system_prompt_share_a_key_per_tenant() -> None:
    keys = {prefix_key("acme", chat(f"question {i}"), 256) for i in range(20)}
    assert len(keys) == 1
    assert prefix_key("other", chat("question 1"), 256) not in keys  # tenants apart
    assert prefix_key("acme", chat("q", system="another letter template " * 20), 256) not in keys
    # A prefix length that reaches the question makes each question its own key.
    assert len({prefix_key("acme", chat(f"question {i}"), 10_000) for i in range(20)}) == 20


# -- endpoints -------------------------------------------------------------------------------------


def slice_of(service: str, endpoints: list[dict[str, Any]], port: int = 8443) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "tenant-acme", "name": f"{service}-abc12",
                     "labels": {"kubernetes.io/service-name": service}},
        "ports": [{"name": "gateway", "port": port, "protocol": "TCP"}],
        "endpoints": endpoints,
    }  # fmt: skip


def endpoint(pod: str, ip: str, **conditions: bool) -> dict[str, Any]:
    return {"addresses": [ip], "conditions": conditions,
            "targetRef": {"kind": "Pod", "name": pod, "namespace": "tenant-acme"}}  # fmt: skip


def test_only_ready_endpoints_count_and_unset_ready_means_ready() -> None:
    parsed = parse_slice(slice_of("m", [
        endpoint("m-a", "10.0.0.1", ready=True),
        endpoint("m-b", "10.0.0.2", ready=False, terminating=True),
        endpoint("m-c", "10.0.0.3"),
        {"addresses": [], "conditions": {"ready": True}},
    ]))  # fmt: skip
    assert parsed is not None and parsed.deployment == "tenant-acme/m"
    assert parsed.endpoints == (
        Endpoint("m-a", "10.0.0.1", 8443),
        Endpoint("m-c", "10.0.0.3", 8443),
    )


def test_slices_without_a_service_or_a_port_say_nothing() -> None:
    assert parse_slice({"metadata": {"namespace": "x"}, "ports": [{"port": 1}]}) is None
    assert parse_slice(slice_of("m", [endpoint("m-a", "10.0.0.1")]) | {"ports": []}) is None


def test_a_deployments_slices_are_merged_and_a_pod_counts_once() -> None:
    one = parse_slice(slice_of("m", [endpoint("m-b", "10.0.0.2"), endpoint("m-a", "10.0.0.1")]))
    two = parse_slice(slice_of("m", [endpoint("m-a", "10.0.0.1"), endpoint("m-c", "fd00::3")]))
    merged = by_deployment([one, two, None])
    assert [e.name for e in merged["tenant-acme/m"]] == ["m-a", "m-b", "m-c"]
    assert merged["tenant-acme/m"][2].host == "[fd00::3]"
    assert by_deployment([parse_slice(slice_of("n", []))]) == {}


# -- routes to one pod -----------------------------------------------------------------------------


def test_in_cluster_a_pod_is_dialed_by_address_and_verified_as_the_service() -> None:
    route = GatewayRoute().replica("m", "tenant-acme", "m-a", "10.0.0.1", 8443)
    assert route == Route("https://10.0.0.1:8443", "m.tenant-acme.svc")
    assert GatewayRoute("http://127.0.0.1:9").replica("m", "ns", "m-a", "10.0.0.1", 8443) is None


def test_locally_a_pod_is_found_in_the_routes_file(tmp_path: Any) -> None:
    routes = tmp_path / "routes.json"
    routes.write_text(
        '{"ns/m": {"url": "https://127.0.0.1:1", "serverName": "m.ns.svc", "replicas": '
        '[{"url": "https://127.0.0.1:1", "pod": "m-a"}, {"url": "https://127.0.0.1:2", "pod": "m-b"}]}}'
    )
    table = GatewayRoute(f"file:{routes}")
    assert table.replica("m", "ns", "m-b", "10.244.0.9", 8443) == Route(
        "https://127.0.0.1:2", "m.ns.svc"
    )
    assert table.replica("m", "ns", "m-z", "10.244.0.9", 8443) is None


# -- loads -----------------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_report_is_moved_on_by_this_front_doors_own_requests_since() -> None:
    clock = Clock()
    board = LoadBoard(clock)
    first = board.start("u")  # one of ours in flight when the poll is asked
    asked = board.asking("u")
    board.report("u", GatewayLoad(in_flight=5, running=3, waiting=2), asked)  # 5 + 2 queued
    assert board.estimates(["u"]) == {"u": 7}
    second = board.start("u")
    assert board.estimates(["u"]) == {"u": 8}
    first.release()
    second.release()
    second.release()  # idempotent
    assert board.estimates(["u"]) == {"u": 6}
    clock.now += 5  # the report is stale: only what this front door knows counts
    assert board.estimates(["u", "never-seen"]) == {"u": 0, "never-seen": 0}


def test_a_gateway_that_does_not_answer_counts_only_our_own_requests() -> None:
    board = LoadBoard(Clock())
    board.report("u", GatewayLoad(9), 0)
    lease = board.start("u")
    board.report("u", None, 1)
    assert board.estimates(["u"]) == {"u": 1}
    lease.release()


def test_load_reports_are_read_leniently_and_refused_when_they_are_not_one() -> None:
    assert GatewayLoad.from_json({"inFlight": 2, "running": 1.0, "waiting": None}) == GatewayLoad(
        2, 1.0
    )
    assert GatewayLoad.from_json({"inFlight": 1, "waiting": float("nan")}) == GatewayLoad(1)
    for bad in (None, [], {"inFlight": -1}, {"inFlight": True}, {"running": 1}):
        assert GatewayLoad.from_json(bad) is None
    assert GatewayLoad(3, 2.0, 4.0).score == 7.0


# -- the router ------------------------------------------------------------------------------------


def md(routing: dict[str, Any] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"model": {"name": "org/m"}}
    if routing is not None:
        spec["routing"] = routing
    return {"metadata": {"namespace": "tenant-acme", "name": "m"}, "spec": spec}


def router(*pods: str) -> ReplicaRouter:
    r = ReplicaRouter(GatewayRoute())
    r.update(
        [parse_slice(slice_of("m", [endpoint(p, f"10.0.0.{i}") for i, p in enumerate(pods, 1)]))]
    )
    return r


def test_without_endpoints_the_router_says_go_to_the_service() -> None:
    assert router().choose(md(), "acme", chat("q")) == []
    assert ReplicaRouter(GatewayRoute("http://127.0.0.1:9")).choose(md(), "acme", {}) == []


def test_prefix_routing_keeps_a_tenants_prompt_on_one_replica_until_it_is_loaded() -> None:
    r = router("m-a", "m-b", "m-c")
    firsts = {r.choose(md(), "acme", chat(f"q{i}"))[0].url for i in range(10)}
    assert len(firsts) == 1
    # Its replica busy (the others idle), the same prompt spills to the next on the ring.
    hot = firsts.pop()
    leases = [r.board.start(hot) for _ in range(3)]
    assert r.choose(md(), "acme", chat("q11"))[0].url != hot
    for lease in leases:
        lease.release()


def test_every_replica_is_offered_once_for_the_fallback() -> None:
    r = router("m-a", "m-b", "m-c")
    for strategy in ("prefix", "least-load", "round-robin"):
        routes = r.choose(md({"strategy": strategy}), "acme", chat("q"))
        assert sorted(x.url for x in routes) == [f"https://10.0.0.{i}:8443" for i in (1, 2, 3)]
        assert {x.server_name for x in routes} == {"m.tenant-acme.svc"}


def test_settings_come_from_the_spec_with_defaults_for_older_objects() -> None:
    assert routing_of(md()).strategy == "prefix"
    assert routing_of(md({"strategy": "least-load", "prefixLength": 64})).prefix_length == 64
    assert routing_of(md({"strategy": "nonsense"})).strategy == "prefix"  # never a failed request


def test_deployments_in_use_are_polled_and_idle_ones_forgotten() -> None:
    clock = Clock()
    r = ReplicaRouter(GatewayRoute(), clock=clock)
    r.update([parse_slice(slice_of("m", [endpoint("m-a", "10.0.0.1")]))])
    assert r.poll_targets() == []
    r.choose(md(), "acme", chat("q"))
    assert [t.url for t in r.poll_targets()] == ["https://10.0.0.1:8443"]
    clock.now += 61
    assert r.poll_targets() == []


def test_a_replica_whose_gateway_says_it_drains_is_tried_last() -> None:
    r = router("m-a", "m-b", "m-c")
    for strategy in ("prefix", "least-load", "round-robin"):
        spec = md({"strategy": strategy})
        leaving = r.choose(spec, "acme", chat("q"))[0].url
        r.board.report(leaving, GatewayLoad(0, draining=True), 0)
        for _ in range(3):  # round robin's every turn too
            routes = [x.url for x in r.choose(spec, "acme", chat("q"))]
            assert routes[-1] == leaving and len(routes) == 3
        r.board.report(leaving, GatewayLoad(0), 0)  # a report without draining: back in turn
        assert leaving in {r.choose(spec, "acme", chat("q"))[0].url for _ in range(3)}
