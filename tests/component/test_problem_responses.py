"""problem+json for every bad request, over FastAPI's in-process client."""

from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel, EmailStr
from pymongo.errors import AutoReconnect

from aimms_shared.errors import Conflict, NotYetKnown
from aimms_shared.http import install_problem_handlers


def app() -> FastAPI:
    api = FastAPI()
    install_problem_handlers(api)

    class Body(BaseModel):
        email: EmailStr

    @api.post("/things")
    async def create(body: Body) -> dict[str, str]:
        raise Conflict("that thing already exists", thing="x")

    @api.get("/mentees/{mentee_id}")
    async def mentee(mentee_id: str) -> None:
        raise NotYetKnown("mentee_id", f"participant '{mentee_id}' has not reached this service yet")

    @api.get("/store-down")
    async def store_down() -> None:
        raise AutoReconnect("127.0.0.1:27017: connection closed")

    @api.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals")

    return api


def test_invalid_input_is_described_field_by_field_without_echoing_values() -> None:
    response = TestClient(app()).post("/things", json={"email": "amina-at-example"})

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == "/problems/validation"
    assert problem["errors"][0]["field"] == "body.email"
    assert "amina-at-example" not in response.text


def test_a_domain_rule_becomes_a_problem_with_its_status() -> None:
    response = TestClient(app()).post("/things", json={"email": "amina@example.org"})
    assert response.status_code == 409
    assert response.json() == {
        "type": "/problems/conflict",
        "title": "Conflict with the current state",
        "status": 409,
        "detail": "that thing already exists",
        "instance": "/things",
        "thing": "x",
    }


def test_unknown_routes_and_crashes_are_problems_too() -> None:
    client = TestClient(app(), raise_server_exceptions=False)
    assert client.get("/nowhere").json()["status"] == 404
    crash = client.get("/boom")
    assert crash.status_code == 500
    assert crash.headers["content-type"] == "application/problem+json"
    assert "secret internals" not in crash.text


def test_something_not_known_here_yet_is_a_409_with_retry_after_not_a_404() -> None:
    response = TestClient(app()).get("/mentees/m-1")

    assert response.status_code == 409 and response.headers["Retry-After"] == "2"
    problem = response.json()
    assert (problem["type"], problem["field"], problem["rule"]) == (
        "/problems/not-yet-known",
        "mentee_id",
        "known-here",
    )
    assert "retry after 2 s" in problem["detail"]


def test_a_store_out_of_reach_is_a_503_to_retry_not_an_internal_error() -> None:
    response = TestClient(app(), raise_server_exceptions=False).get("/store-down")

    assert (response.status_code, response.headers["Retry-After"]) == (503, "2")
    assert response.json()["type"] == "/problems/unavailable" and "27017" not in response.text
