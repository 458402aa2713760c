"""Fuzz every operation of the app's own OpenAPI schema with a valid token (schemathesis).

Checks: no 5xx, and every documented response matches its schema and content type.
Bounded: a few examples per operation, no shrinking, so the module stays well under 2 min.
"""

import pytest
import schemathesis
from eqtest.api import create_user
from eqtest.app import make_app
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

MAX_EXAMPLES = 12


@pytest.fixture(scope="module")
def fuzz_user(db):
    return create_user(db, name="Fuzz User")


@pytest.fixture(scope="module")
def api_schema(app_env, redis_client, llm):
    app = make_app(app_env)
    return schemathesis.openapi.from_asgi("/schema/openapi.json", app)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_api_from_its_own_schema(case, fuzz_user) -> None:
    case.call_and_validate(
        headers={"Cookie": f"access_token={fuzz_user.token}"},
        checks=[not_a_server_error, response_schema_conformance, content_type_conformance],
    )
