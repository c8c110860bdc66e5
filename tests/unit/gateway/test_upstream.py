"""vLLM's refusals reach the client in vLLM's words, without the input they quote."""

from __future__ import annotations

import json

from paitient_gateway.upstream import max_model_len_from, public_message, refusal_message

VALIDATION = (
    "2 validation errors:\n"
    "  {'type': 'int_parsing', 'loc': 'body.max_tokens', 'msg': 'Input should be a valid "
    "integer, unable to parse string as an integer', 'input': 'patient John Doe'}\n"
    "  {'type': 'list_type', 'loc': 'body.messages', 'msg': 'Input should be a valid list', "
    "'input': 'secret prompt'}"
)


def test_validation_errors_keep_field_and_rule_but_not_the_input() -> None:
    message = public_message(VALIDATION)
    assert message == (
        "2 validation errors: body.max_tokens: Input should be a valid integer, unable to parse "
        "string as an integer; body.messages: Input should be a valid list"
    )
    assert "John" not in message and "secret" not in message


def test_an_entry_that_is_no_literal_still_loses_its_input() -> None:
    line = "  {'type': 'value_error', 'loc': 'body.n', 'msg': 'bad', 'input': 'x', 'ctx': {'error': ValueError('x')}}"
    assert public_message("1 validation error:\n" + line) == "1 validation error: body.n: bad"


def test_vllms_own_messages_pass_unchanged() -> None:
    text = "max_tokens=4096 cannot be greater than max_model_len=512. (parameter=max_tokens, value=4096)"
    payload = json.dumps({"error": {"message": text, "type": "BadRequestError", "code": 400}})
    assert refusal_message(payload.encode()) == text


def test_no_message_means_none() -> None:
    assert refusal_message(b"<html>") is None
    assert refusal_message(b'{"error": {"message": ""}}') is None
    assert len(public_message("x" * 5000)) <= 1001


def test_the_context_length_comes_from_the_first_model() -> None:
    assert max_model_len_from({"data": [{"id": "m", "max_model_len": 512}]}) == 512
    assert max_model_len_from({"data": [{"id": "m"}]}) is None
    assert max_model_len_from({"data": [{"max_model_len": True}]}) is None
    assert max_model_len_from([]) is None
