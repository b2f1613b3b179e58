"""schemathesis against the app's own OpenAPI document, in process: every generated request
(bodies, uploads, query and path parameters that follow — and stretch — the schema) gets a
documented status and a body that matches its schema, and never a 5xx. Writes carry a valid
key so that they reach the engine. At least 500 requests in all (``FUZZ_EXAMPLES`` per
operation, 40 by default; a fixed draw unless ``FUZZ_RANDOM=1``).

The app is made at import (schemathesis reads its schema then); its lifespan opens the index
at the first request, by which time the fixture has copied the demo index into place.
(``schemathesis.pytest.from_fixture`` would avoid that, but fails on pytest 9.)
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from stylesearch.service import Settings, create_app

KEY = "fuzz-key"
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "40"))
# The same examples every run (CI must not flake on a rare draw); FUZZ_RANDOM=1 explores anew.
DERANDOMIZE = not os.environ.get("FUZZ_RANDOM")
CALLS: dict[str, int] = {}
STATUSES: dict[int, int] = {}
INDEX = Path(tempfile.mkdtemp(prefix="stylesearch-fuzz-")) / "index"

app = create_app(Settings(index=str(INDEX), device="cpu", api_keys=KEY))  # type: ignore[call-arg]
schema = schemathesis.openapi.from_dict(app.openapi())  # what /openapi.json serves, without starting the app
schema.app = app  # requests go to the app in process (its lifespan starts at the first one)


@pytest.fixture(scope="module", autouse=True)
def fuzz_index(built_index: Path) -> Iterator[Path]:
    shutil.copytree(built_index, INDEX)
    yield INDEX
    total = sum(CALLS.values())
    shutil.rmtree(INDEX.parent, ignore_errors=True)
    print(f"\nschemathesis: {total} generated requests over {len(CALLS)} operations, statuses {sorted(STATUSES.items())}")
    assert total >= 500, f"only {total} generated requests: raise FUZZ_EXAMPLES"


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=DERANDOMIZE)
def test_generated_requests_get_documented_answers(case: schemathesis.Case) -> None:
    # Every check but "schema-valid data must be accepted": uploads that fit the schema
    # (any bytes) are rightly refused when they are not images, as are `where` strings that
    # are not JSON objects — documented 4xx answers, which the other checks still validate.
    response = case.call_and_validate(
        headers={"Authorization": f"Bearer {KEY}"}, excluded_checks=[schemathesis.checks.positive_data_acceptance]
    )
    CALLS[case.operation.label] = CALLS.get(case.operation.label, 0) + 1
    STATUSES[response.status_code] = STATUSES.get(response.status_code, 0) + 1
    assert response.status_code < 500, response.text
