"""The control plane's ports: one base shifts them all; spare bases for throwaway clusters."""

from __future__ import annotations

from paitient_localcluster.controlplane.ports import SPARE_BASES, Ports, spare_base_order


def test_ports_shift_with_the_base_and_never_collide() -> None:
    ports = Ports.from_base(20000).all()
    assert len(set(ports.values())) == len(ports)
    assert Ports.from_base(20000).apiserver - Ports.from_base(10000).apiserver == 10000


def test_spare_bases_never_share_a_port_with_a_checkouts_base_and_stay_below_ephemeral() -> None:
    checkout_ports = set().union(
        *(Ports.from_base(b).every_port() for b in range(10000, 33000, 100))
    )
    for base in SPARE_BASES:
        ports = Ports.from_base(base).every_port()
        assert not ports & checkout_ports
        assert max(ports) < 32768
    order = spare_base_order(7)
    assert sorted(order) == list(SPARE_BASES)
    assert order[0] == SPARE_BASES[7] != spare_base_order(8)[0]
