"""The relay's port mappings."""

from __future__ import annotations

import pytest

from paitient_localcluster.host.relay import PortMapping


def test_relay_mappings_parse_and_print_back() -> None:
    mapping = PortMapping.parse("16443=127.0.0.1:16443")
    assert mapping == PortMapping(16443, "127.0.0.1", 16443)
    assert PortMapping.parse(str(mapping)) == mapping
    for bad in ("16443", "x=127.0.0.1:1", "1=127.0.0.1:", "1=:2"):
        with pytest.raises(ValueError, match="LISTEN_PORT=HOST:PORT"):
            PortMapping.parse(bad)
