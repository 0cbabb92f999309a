"""A fuzzing run of the whole HTTP API from its own OpenAPI schema (schemathesis): whatever a client sends that
the schema allows, or almost allows, the service answers without a 5xx and without a traceback."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from voxemo.apps.service import create_app

APP = create_app(None, max_upload_mb=1, max_seconds=20)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_request_gets_a_server_error(case: schemathesis.Case) -> None:
    response = case.call()
    case.validate_response(response, checks=[not_a_server_error])
    assert "Traceback" not in response.text
