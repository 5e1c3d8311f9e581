"""Survey links never reach a log: a questionnaire is fetched and answered through uvicorn, and every line is scanned.

The surveys service runs as its container runs it (`uvicorn --factory`: uvicorn sets up its own
loggers, then builds the app) against the real broker and store; the token comes from a real
invitation. What the service logs is captured with the service's own formatter, and what anything
prints to stdout or stderr (uvicorn's own handlers, were they left in place) with `capfd`.
"""

import asyncio
import io
import json
import logging
import re
from collections.abc import Iterator

import httpx
import pytest
import structlog
import uvicorn

from aimms_shared.contracts import registration as reg
from aimms_shared.contracts.surveys import INVITATIONS
from aimms_shared.events import in_namespace
from aimms_shared.logging import configure_logging
from aimms_surveys.app import create_app as create_surveys
from aimms_surveys.settings import SurveysSettings

from .conftest import Infrastructure, _free_port, eventually, read_topic, service_settings
from .test_notifications_flow import publish
from .test_surveys_flow import PROGRAMME, started, token_of

pytestmark = pytest.mark.integration

ANSWERS = {
    "job_title": "Lecturer",
    "ethnicity": "British Bangladeshi",
    "career_more_challenging": {"value": True, "text": "I cannot be what I don't see"},
    "want_from_scheme": {"value": ["career-advice", "other"], "text": "How to navigate my career"},
}


@pytest.fixture
def service_log() -> Iterator[io.StringIO]:
    """Every log record, rendered as the service renders it (records reach the root logger)."""
    configure_logging("console")  # as the app does when built; the app's own call then changes nothing here
    root = logging.getLogger()
    formatter = next(h.formatter for h in root.handlers if isinstance(h.formatter, structlog.stdlib.ProcessorFormatter))
    captured = io.StringIO()
    handler = logging.StreamHandler(captured)
    handler.setFormatter(formatter)
    root.addHandler(handler)
    try:
        yield captured
    finally:
        root.removeHandler(handler)


async def test_no_log_line_carries_a_survey_token_and_each_request_is_logged_by_its_route(
    infrastructure: Infrastructure,
    namespace: str,
    service_log: io.StringIO,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="httpx")  # the test's own client logs the URLs it calls
    settings = service_settings(SurveysSettings, infrastructure, namespace, public_url="http://surveys.test")
    port = _free_port()
    config = uvicorn.Config(lambda: create_surveys(settings), factory=True, host="127.0.0.1", port=port)
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    try:
        await eventually(lambda: server.started or serving.done(), timeout=60)
        assert not serving.done(), "the surveys service did not start"
        in_evaluation = reg.EvaluationParticipationChanged(
            participant_id="mentee-1", programme_id=PROGRAMME, institution_id="demo-university", in_evaluation=True
        )
        await publish(infrastructure, namespace, in_evaluation, started("mentee-1", "mentor-1"), producer="test")
        token = token_of(await eventually(lambda: _link_for(infrastructure, namespace, "mentee-1")))

        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            shown = await http.get(f"/surveys/{token}", params={"from": "mail-query-marker"})
            recorded = await http.post(f"/surveys/{token}", json={"answers": ANSWERS})
            used = await http.get(f"/surveys/{token}")
            nowhere = await http.get(f"/surveys/{token}/not-a-route-marker")
    finally:
        server.should_exit = True
        await serving

    assert (shown.status_code, recorded.status_code, used.status_code, nowhere.status_code) == (200, 201, 410, 404)
    out, err = capfd.readouterr()
    output = re.sub(r"\x1b\[[0-9;]*m", "", service_log.getvalue() + out + err)  # without terminal colours
    for secret in (token, "mail-query-marker", "not-a-route-marker"):
        assert secret not in output, f"{secret!r} reached a log"
    access = [line for line in output.splitlines() if "http.access" in line]
    assert sum("/surveys/{token}" in line for line in access) == 3  # fetched, answered, refused once used
    assert sum("unmatched" in line for line in access) == 1
    assert all("method=" in line and "status=" in line and "duration_ms=" in line for line in access)
    assert "uvicorn.access" not in output


async def _link_for(infra: Infrastructure, namespace: str, participant_id: str) -> str | None:
    records = await read_topic(infra, in_namespace(INVITATIONS.name, namespace), expect=2, timeout=2)
    payloads = [json.loads(record.value)["payload"] for record in records]
    return next((p["link"] for p in payloads if p["participant_id"] == participant_id), None)
