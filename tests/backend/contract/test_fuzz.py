"""Fuzz every operation of the app's own OpenAPI schema with a valid token (schemathesis).

Checks: no 5xx, and every documented response matches its schema and content type.
Bounded: a few examples per operation, no shrinking, so the module stays well under 2 min.
"""

import pytest
import schemathesis
from eqtest.api import create_user
from eqtest.app import make_app
from hypothesis import HealthCheck, Phase, given, settings
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


def test_api_from_its_own_schema(api_schema, fuzz_user) -> None:
    """Every operation, a few generated cases each; all failures are reported together."""
    headers = {"Cookie": f"access_token={fuzz_user.token}"}
    checks = [not_a_server_error, response_schema_conformance, content_type_conformance]
    failures: list[str] = []
    operations = 0
    for result in api_schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def fuzz(case) -> None:
            case.call_and_validate(headers=headers, checks=checks)

        try:
            fuzz()
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # collect, then fail once with every operation's reason
            first = [ln for ln in str(exc).strip().splitlines() if ln.strip()][:10]
            failures.append(
                f"{operation.method.upper()} {operation.path}:\n  " + "\n  ".join(first)
            )
    assert operations > 20, f"the schema lists only {operations} operations"
    assert not failures, f"{len(failures)} of {operations} operations failed:\n" + "\n".join(
        failures
    )
