"""Every request reaches vLLM salted with its caller's tenant, and a client's own salt is
refused in the one error shape, naming the field."""

from __future__ import annotations

import json
import re

import pytest

from paitient_common.errors import RequestValidationError
from paitient_gateway.cache_salt import CacheSalts
from paitient_gateway.usage import CHAT_COMPLETIONS, COMPLETIONS, prepare_request

VLLM_SALT = re.compile(r"[^@/\\\x00]{1,128}")  # what vLLM 0.32's validate_cache_salt accepts


def test_a_tenants_salt_is_its_own_stable_and_acceptable_to_vllm() -> None:
    salts = CacheSalts()
    acme, other = salts.salt("acme"), salts.salt("other")
    assert acme == salts.salt("acme") != other
    assert VLLM_SALT.fullmatch(acme) and len(acme) == 43
    # Unpredictable: another gateway process (another key) salts the same tenant otherwise.
    assert CacheSalts().salt("acme") != acme
    assert CacheSalts(b"k" * 32).salt("acme") == CacheSalts(b"k" * 32).salt("acme")


@pytest.mark.parametrize("route", [COMPLETIONS, CHAT_COMPLETIONS])
@pytest.mark.parametrize("stream", [False, True])
def test_the_gateways_salt_goes_on_every_request(route: str, stream: bool) -> None:
    body = (
        {"prompt": "p"}
        if route == COMPLETIONS
        else {"messages": [{"role": "user", "content": "p"}]}
    )
    raw = json.dumps({**body, "stream": stream}).encode()
    forwarded = json.loads(prepare_request(route, raw, "m", 16, cache_salt="s4lt").body)
    assert forwarded["cache_salt"] == "s4lt"


@pytest.mark.parametrize("salt", ["mine", "", 3, ["x"]])
def test_a_clients_salt_is_refused_naming_the_field(salt: object) -> None:
    raw = json.dumps({"prompt": "p", "cache_salt": salt}).encode()
    with pytest.raises(RequestValidationError) as refused:
        prepare_request(COMPLETIONS, raw, "m", 16, cache_salt="s4lt")
    assert refused.value.status == 400 and refused.value.type == "validation_error"
    assert refused.value.message.startswith("cache_salt: ") and refused.value.param == "cache_salt"


def test_a_null_salt_is_no_salt_and_is_replaced() -> None:
    raw = json.dumps({"prompt": "p", "cache_salt": None}).encode()
    assert (
        json.loads(prepare_request(COMPLETIONS, raw, "m", 16, cache_salt="s").body)["cache_salt"]
        == "s"
    )
