"""schemathesis against the app's OpenAPI schema (ASGI, in process): for every operation, up
to MAX_EXAMPLES requests with a valid key from each of its documented examples, generated
valid inputs and generated invalid inputs; none may answer 5xx (the one exception: the token
route's documented 503 when LiveKit is not configured, as here), and every documented
response must match its schema.

Renders stay cheap: 128 px, texts over 60 characters refused by the limit (413). Path
parameters named ``session_id`` get a real session of the tenant (except on DELETE), so
generate and token are exercised past the 404. Hypothesis is driven here directly rather than
through ``schemathesis.pytest.from_fixture``, whose runner sets ``Node._nodeid``, which
pytest 9 no longer has.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.serve.conftest import auth

MAX_EXAMPLES = 15
CHECKS = [not_a_server_error, response_schema_conformance]


@pytest.fixture
def api(make_app) -> Iterator[tuple[schemathesis.BaseSchema, str]]:  # noqa: ANN001
    """The schema of an app (128 px, short texts, no rate limit in the way) and a session id."""
    app = make_app("limits.max_text_chars=60", "limits.tenant_rate_per_min=100000")
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    with asgi.get_client(app) as client:  # starts the app's lifespan (kept by schemathesis)
        made = client.post("/v1/sessions", json={"companion_id": "default"}, headers=auth("alpha"))
        assert made.status_code == 201, made.text
    try:
        yield schema, made.json()["id"]
    finally:
        asgi.shutdown_lifespans()


def _checks_for(response) -> list:  # noqa: ANN001
    """Every check, but the token route's documented 503 (no LiveKit here) is not a failure."""
    if response.status_code == 503:
        kind = response.json().get("type", "")
        if kind.endswith("/livekit-not-configured"):
            return [response_schema_conformance]
    return CHECKS


def _strategy(schema, operation, mode: str):  # noqa: ANN001, ANN202
    """Cases of ``operation``: its documented examples, or generated valid or invalid ones."""
    if mode == "examples":
        found = schema.get_strategies_from_examples(operation)
        return st.one_of(found) if found else None
    return operation.as_strategy(GenerationMode(mode))


def _exercise(schema, operation, mode: str, session_id: str) -> list[str]:  # noqa: ANN001
    """Run up to MAX_EXAMPLES cases of ``operation``; returns the failures, one line each."""
    strategy = _strategy(schema, operation, mode)
    if strategy is None:
        return []
    failures: list[str] = []

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
        derandomize=True,
    )
    @given(case=strategy)
    def run(case) -> None:  # noqa: ANN001
        if "{session_id}" in operation.path and case.method.upper() != "DELETE":
            case.path_parameters["session_id"] = session_id
        response = case.call(headers=auth("alpha"))
        try:
            case.validate_response(response, checks=_checks_for(response))
        except AssertionError as exc:  # schemathesis' FailureGroup: collect, keep going
            failures.append(f"{operation.label} ({mode}): {str(exc).strip()[:800]}")

    try:
        run()
    except Unsatisfiable:  # negative mode: nothing in this operation can be made invalid
        assert mode == "negative", operation.label
    return failures


@pytest.mark.parametrize("mode", ["examples", "positive", "negative"])
def test_no_server_errors_and_responses_match_the_schema(api, mode):
    schema, session_id = api
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 12
    for operation in operations:
        failures += _exercise(schema, operation, mode, session_id)
    assert not failures, "\n\n".join(failures)
