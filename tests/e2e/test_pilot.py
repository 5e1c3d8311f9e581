"""A pilot of the scheme replayed against the locally running platform, through public APIs only.

Three schools onboard; a programme with a term of seconds opens; 32 people register through their
schools' portals and mentees name their top three; the coordinator runs a round; one mentor
declines and her mentee is matched again; every pair accepts; baseline questionnaires are
answered; the follow-up point passes and follow-ups are answered; the term ends; one mentee
withdraws and another is erased. Then the coordinators' reports are checked figure by figure, and
the SMTP sink must hold exactly the emails the procedure requires, each once.
"""

import asyncio
import hashlib
import re
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from aimms_deploy.local_stack import SERVICES, LocalStack
from aimms_deploy.smtp_sink import read_messages

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]
T = TypeVar("T")

SCALE = ["PhD student", "Postdoctoral researcher", "Lecturer", "Senior lecturer", "Associate professor", "Professor"]
INTERESTS = ["cardiology", "global health", "medical education", "oncology", "genomics", "public health"]
FOLLOW_UP, TERM = 20, 45  # seconds: the programme's "six months" and term


@dataclass
class Person:
    key: str
    institution: str
    role: str
    seniority: str
    interests: list[str]
    email: str = ""
    participant_id: str = ""


@dataclass
class Pilot:
    """The running platform's base URLs, the coordinator's and the schools' tokens, and the people."""

    run: str
    urls: dict[str, str]
    maildir: Path
    admin: dict[str, str]
    portals: dict[str, dict[str, str]] = field(default_factory=dict)
    people: list[Person] = field(default_factory=list)
    programme: str = ""

    def person(self, participant_id: str) -> Person:
        return next(p for p in self.people if p.participant_id == participant_id)

    def portal_of(self, participant_id: str) -> dict[str, str]:
        return self.portals[self.person(participant_id).institution]


async def eventually(probe: Callable[[], Awaitable[T]], what: str, timeout: float = 60) -> T:
    deadline = time.monotonic() + timeout
    while True:
        result = await probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s (last: {result!r})")
        await asyncio.sleep(0.3)


@pytest.fixture
async def platform() -> AsyncIterator[tuple[LocalStack, httpx.AsyncClient]]:
    """The platform's services on the local infrastructure, started if they are not running yet."""
    stack = LocalStack()
    stack.start(SERVICES)
    async with httpx.AsyncClient(timeout=30) as client:
        yield stack, client


async def token(client: httpx.AsyncClient, url: str, client_id: str, secret: str) -> dict[str, str]:
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    response = await client.post(f"{url}/oauth/token", data=form)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def test_a_pilot_runs_end_to_end(platform: tuple[LocalStack, httpx.AsyncClient]) -> None:
    stack, http = platform
    urls = {s.name: s.endpoint for s in stack.status(SERVICES)}
    secrets = stack.registration_secrets()
    admin = await token(
        http,
        urls["registration"],
        secrets["REGISTRATION_BOOTSTRAP_ADMIN_CLIENT_ID"],
        secrets["REGISTRATION_BOOTSTRAP_ADMIN_SECRET"],
    )
    pilot = Pilot(uuid.uuid4().hex[:8], urls, Path(stack.endpoints()["SMTP_SINK_DIR"]), admin)
    await onboard(http, pilot)
    await register_cohort(http, pilot)
    proposals = await match(http, pilot)
    await start_partnerships(http, pilot, proposals)
    await answer_surveys(http, pilot, "baseline")
    await wait_for_pairs(http, pilot, lambda pair: pair["term_reply_by"] is not None, "every term has ended")
    await answer_surveys(http, pilot, "follow_up")
    leaver, erased = await withdraw_and_erase(http, pilot, proposals)
    await check_reports(http, pilot, leaver, erased)
    await check_emails(http, pilot, proposals, leaver, erased)


async def onboard(http: httpx.AsyncClient, pilot: Pilot) -> None:
    registration, admin = pilot.urls["registration"], pilot.admin
    for school in ("a", "b", "c"):
        institution = f"pilot-{pilot.run}-{school}"
        domain = f"{institution}.ac.uk"
        body = {"institution_id": institution, "name": f"Pilot School {school.upper()}", "email_domains": [domain]}
        response = await http.post(
            f"{registration}/institutions", json=body | {"contact_email": f"office@{domain}"}, headers=admin
        )
        assert response.status_code == 201, response.text
        scopes = ["participants:write", "participants:read", "profiles:read"]
        credential = await http.post(
            f"{registration}/credentials",
            json={"name": f"{institution} portal", "institution_id": institution, "scopes": scopes},
            headers=admin,
        )
        assert credential.status_code == 201, credential.text
        secret = credential.json()
        pilot.portals[institution] = await token(http, registration, secret["client_id"], secret["client_secret"])
    pilot.programme = f"pilot-{pilot.run}"
    programme = {
        "programme_id": pilot.programme,
        "name": "AIMMS Pilot",
        "eligibility": [{"statement_id": "academic-medicine", "text": "I work in academic medicine in the UK."}],
        "roles_offered": ["mentor", "mentee"],
        "seniority_scale": SCALE,
        "default_mentor_capacity": 2,
        "max_mentor_capacity": 3,
        "term": f"PT{TERM}S",
        "follow_up_after": f"PT{FOLLOW_UP}S",
        # Long enough that no proposal lapses, no reminder is due and no term concludes by silence in the test.
        "matching": {"reply_within": "PT20M", "reminder_after": "PT15M", "trial_period": "PT5S"},
    }
    created = await http.post(f"{registration}/programmes", json=programme, headers=admin)
    assert created.status_code == 201, created.text
    surveys = pilot.urls["surveys"]
    policy = {"baseline_on": "mentoring_started", "follow_up": True, "valid_for": "P1D", "max_reminders": 0}
    assert (
        await http.put(f"{surveys}/programmes/{pilot.programme}/survey-policy", json=policy, headers=admin)
    ).is_success
    for wave in ("baseline", "follow_up"):  # the AIMMS questionnaires, adopted for the pilot as data
        definition = (await http.get(f"{surveys}/questionnaires/aimms-mentoring/{wave}", headers=admin)).json()
        draft = {k: v for k, v in definition.items() if k not in ("programme_id", "wave", "version")}
        adopted = await http.post(f"{surveys}/questionnaires/{pilot.programme}/{wave}", json=draft, headers=admin)
        assert adopted.status_code == 201, adopted.text


async def register_cohort(http: httpx.AsyncClient, pilot: Pilot) -> None:
    schools = list(pilot.portals)
    plan = [("mentor", s) for s in SCALE[3:] for _ in range(4)] + [("both", "Senior lecturer")] * 2
    plan += [("mentee", s) for s in SCALE[:3] for _ in range(6)]
    for i, (role, seniority) in enumerate(plan):
        school = schools[i % len(schools)]
        person = Person(f"p{i:02d}", school, role, seniority, [INTERESTS[i % 6], INTERESTS[(i * 5 + 1) % 6]])
        person.email = f"{person.key}.{pilot.run}@{school}.ac.uk"
        body: dict[str, Any] = {
            "name": f"Dr Pilot {person.key.upper()}",
            "email": person.email,
            "programme_id": pilot.programme,
            "role": role,
            "job_title": seniority,
            "seniority": seniority,
            "pathway": "clinical",
            "research_interests": person.interests,
            "consents": {"privacy_notice": "1", "code_of_conduct": "1", "confidentiality": "1", "evaluation": "1"},
            "confirmed_eligibility": ["academic-medicine"],
        }
        if role in ("mentor", "both"):
            body |= {"offers": "Grant writing", "mentor_capacity": 2, "publish_profile": True}
        if role in ("mentee", "both"):
            body |= {"seeks": "Career advice"}
        response = await http.post(
            f"{pilot.urls['registration']}/participants", json=body, headers=pilot.portals[school]
        )
        assert response.status_code == 201, response.text
        person.participant_id = response.json()["participant_id"]
        pilot.people.append(person)


def mentors(pilot: Pilot) -> list[Person]:
    return [p for p in pilot.people if p.role in ("mentor", "both")]


def mentees(pilot: Pilot) -> list[Person]:
    return [p for p in pilot.people if p.role in ("mentee", "both")]


async def match(http: httpx.AsyncClient, pilot: Pilot) -> dict[str, dict[str, Any]]:
    """Choices, the round, one decline and the re-match; the open proposal of each mentee."""
    matching = pilot.urls["matching"]

    async def directory_complete() -> bool:
        listed = await http.get(f"{matching}/directory", params={"programme_id": pilot.programme}, headers=pilot.admin)
        return {e["participant_id"] for e in listed.json()} == {m.participant_id for m in mentors(pilot)}

    await eventually(directory_complete, "matching's directory lists every mentor")
    for mentee in mentees(pilot):
        path = f"{matching}/mentees/{mentee.participant_id}/preferences"
        await eventually(lambda path=path: _ok(http.get(path, headers=pilot.admin)), "matching knows the mentee")
        senior = [m for m in mentors(pilot) if SCALE.index(m.seniority) > SCALE.index(mentee.seniority) and m != mentee]
        senior.sort(key=lambda m: (-len(set(m.interests) & set(mentee.interests)), m.key))
        choices = [m.participant_id for m in senior[:3]]
        chosen = await http.put(path, json={"choices": choices}, headers=pilot.portals[mentee.institution])
        assert chosen.status_code == 200, chosen.text

    ran = await http.post(f"{matching}/programmes/{pilot.programme}/rounds", headers=pilot.admin)
    assert ran.status_code == 201, ran.text
    report = ran.json()
    assert (report["mentees"], report["mentors"]) == (len(mentees(pilot)), len(mentors(pilot)))
    assert report["proposed"] == len(mentees(pilot)) and report["unmatched"] == 0  # 28 places for 20 mentees
    assert report["stable"]["blocking_pairs"] == 0
    proposed = await wait_for_pairs(http, pilot, lambda p: p["state"] == "proposed", "every mentee has a proposal")
    by_mentee = {p["mentee_id"]: p for p in proposed}

    # One mentor declines through her school's portal; her mentee is proposed someone else.
    declined = by_mentee[mentees(pilot)[0].participant_id]
    answer = {"side": "mentor", "accept": False, "reason": "on research leave"}
    response = await http.post(
        f"{matching}/pairs/{declined['pair_id']}/answers", json=answer, headers=pilot.portal_of(declined["mentor_id"])
    )
    assert response.status_code == 200, response.text

    async def rematched() -> dict[str, Any] | None:
        pairs = await list_pairs(http, pilot)
        fresh = [p for p in pairs if p["mentee_id"] == declined["mentee_id"] and p["state"] == "proposed"]
        return fresh[0] if fresh else None

    again = await eventually(rematched, "the declined mentee is proposed another mentor")
    assert again["mentor_id"] != declined["mentor_id"] and again["round"] == "rolling"
    by_mentee[declined["mentee_id"]] = again | {"declined": declined}
    return by_mentee


async def list_pairs(http: httpx.AsyncClient, pilot: Pilot) -> list[dict[str, Any]]:
    response = await http.get(
        f"{pilot.urls['matching']}/pairs", params={"programme_id": pilot.programme}, headers=pilot.admin
    )
    assert response.status_code == 200, response.text
    return response.json()


async def wait_for_pairs(
    http: httpx.AsyncClient, pilot: Pilot, condition: Callable[[dict[str, Any]], bool], what: str
) -> list[dict[str, Any]]:
    async def all_there() -> list[dict[str, Any]] | None:
        pairs = [p for p in await list_pairs(http, pilot) if p["state"] not in ("declined", "ended")]
        return pairs if len(pairs) == len(mentees(pilot)) and all(map(condition, pairs)) else None

    return await eventually(all_there, what, timeout=90)


async def start_partnerships(http: httpx.AsyncClient, pilot: Pilot, proposals: dict[str, dict[str, Any]]) -> None:
    matching = pilot.urls["matching"]
    for pair in proposals.values():
        for side in ("mentee", "mentor"):
            who = pair[f"{side}_id"]
            response = await http.post(
                f"{matching}/pairs/{pair['pair_id']}/answers",
                json={"side": side, "accept": True},
                headers=pilot.portal_of(who),
            )
            assert response.status_code == 200, response.text
    await wait_for_pairs(http, pilot, lambda p: p["state"] == "mentoring", "every partnership has started")


def mail_to(pilot: Pilot, email: str) -> list[EmailMessage]:
    return read_messages(pilot.maildir, to=email)


def text_of(message: EmailMessage) -> str:
    return message.get_body(("plain",)).get_content()


def respondents(pilot: Pilot) -> list[tuple[Person, str]]:
    """Everyone asked to answer: each mentee and mentor in a partnership, once per role."""
    return [(p, "mentee") for p in mentees(pilot)] + [(p, "mentor") for p in mentors(pilot) if p.role != "mentee"]


async def answer_surveys(http: httpx.AsyncClient, pilot: Pilot, wave: str) -> None:
    """Each invited person opens her link from the email and answers; a second use is refused."""
    subject = "as your mentoring begins" if wave == "baseline" else "six-month questionnaire"
    asked = [(p, role) for p, role in respondents(pilot) if await _in_partnership(http, pilot, p, role)]
    # Emails link to the portal's page; a school's own portal would call the surveys API behind it, as here.
    link = re.compile(re.escape(pilot.urls["portal"]) + r"/surveys/(\S+)")

    for person, role in asked:
        # Each from her own browser: the portal passes her address on, and the link routes' bounds are per person.
        hers = {"X-Forwarded-For": _address_of(person)}

        async def invitation(person: Person = person, role: str = role) -> tuple[str, dict[str, Any]] | None:
            """Her link for this role, from her email (a person who is both has one per role)."""
            for message in mail_to(pilot, person.email):
                if subject in message["Subject"]:
                    for token in link.findall(text_of(message)):
                        url = f"{pilot.urls['surveys']}/surveys/{token}"
                        view = await http.get(url, headers={"X-Forwarded-For": _address_of(person)})
                        if view.status_code == 200 and view.json()["role"] == role:
                            return url, view.json()
            return None

        url, view = await eventually(invitation, f"{person.key}'s {wave} invitation as {role}", timeout=90)
        answered = await http.post(url, json={"answers": answers_for(view)}, headers=hers)
        assert answered.status_code == 201, answered.text
        assert (await http.post(url, json={"answers": {}}, headers=hers)).status_code == 410  # a link works once


async def _in_partnership(http: httpx.AsyncClient, pilot: Pilot, person: Person, role: str) -> bool:
    pairs = await list_pairs(http, pilot)
    return any(p[f"{role}_id"] == person.participant_id and p["started_at"] for p in pairs)


def answers_for(view: dict[str, Any]) -> dict[str, Any]:
    """Plausible answers for every item she is shown: the first option, four stars, agreement, eight."""
    answers: dict[str, Any] = {}
    for item in view["items"]:
        kind, item_id = item["kind"], item["id"]
        if kind == "single_choice":
            answers[item_id] = item["options"][0]["id"]
        elif kind == "multiple_choice":
            answers[item_id] = [item["options"][0]["id"]]
        elif kind == "yes_no":
            answers[item_id] = True
        elif kind in ("agreement", "stars"):
            answers[item_id] = 4
        elif kind == "scale_10":
            answers[item_id] = 8
        elif kind == "number":
            answers[item_id] = 2
    return answers


async def withdraw_and_erase(
    http: httpx.AsyncClient, pilot: Pilot, proposals: dict[str, dict[str, Any]]
) -> tuple[Person, Person]:
    registration = pilot.urls["registration"]
    leaver, erased = mentees(pilot)[-1], mentees(pilot)[-2]
    withdrawn = await http.post(
        f"{registration}/participants/{leaver.participant_id}/withdrawal",
        json={},
        headers=pilot.portals[leaver.institution],
    )
    assert withdrawn.status_code == 200, withdrawn.text
    gone = await http.delete(
        f"{registration}/participants/{erased.participant_id}", headers=pilot.portals[erased.institution]
    )
    assert gone.status_code == 204, gone.text

    async def both_ended_and_erasure_done() -> bool:
        pairs = {p["pair_id"]: p for p in await list_pairs(http, pilot)}
        ended = [pairs.get(proposals[p.participant_id]["pair_id"], {}) for p in (leaver, erased)]
        # Erasure ends her partnership first and takes her id off it last, so the id is what to wait for.
        return all(pair.get("end_reason") == "withdrawn" for pair in ended) and ended[1].get("mentee_id") == "erased"

    await eventually(both_ended_and_erasure_done, "the leavers' partnerships have ended and erasure is done")
    return leaver, erased


async def check_reports(http: httpx.AsyncClient, pilot: Pilot, leaver: Person, erased: Person) -> None:
    admin = pilot.admin
    rows = (
        await http.get(
            f"{pilot.urls['registration']}/reports/pipeline", params={"programme_id": pilot.programme}, headers=admin
        )
    ).json()
    by_school = {r["institution_id"]: r for r in rows}
    for school in pilot.portals:
        people = [p for p in pilot.people if p.institution == school]
        row = by_school[school]
        assert row["registered"] == len(people) - (leaver in people) - (erased in people), row
        assert row["withdrawn"] == (leaver in people) and row["erased"] == (erased in people), row

    report = (
        await http.get(
            f"{pilot.urls['matching']}/reports/matching", params={"programme_id": pilot.programme}, headers=admin
        )
    ).json()
    assert report["partnerships_started"] == len(mentees(pilot)) - 1  # the erased mentee is no longer counted
    assert report["pairs_by_state"] == {"mentoring": len(mentees(pilot)) - 2, "ended": 2, "declined": 1}
    assert report["days_to_match_median"] is not None

    surveys = (await http.get(f"{pilot.urls['surveys']}/reports/{pilot.programme}", headers=admin)).json()
    assert leaver.participant_id not in str(surveys) and erased.participant_id not in str(surveys)
    started = [p for p in await list_pairs(http, pilot) if p["started_at"]]
    mentors_asked = len({p["mentor_id"] for p in started})
    for wave in ("baseline", "follow_up"):
        roles = surveys["waves"][wave]["roles"]
        assert (roles["mentee"]["invited"], roles["mentee"]["responses"]) == (len(mentees(pilot)),) * 2
        assert (roles["mentor"]["invited"], roles["mentor"]["responses"]) == (mentors_asked,) * 2
        assert not roles["mentee"]["suppressed"] and not roles["mentor"]["suppressed"]


async def check_emails(
    http: httpx.AsyncClient, pilot: Pilot, proposals: dict[str, dict[str, Any]], leaver: Person, erased: Person
) -> None:
    """Exactly the emails the procedure requires, each once."""
    pairs = {p["pair_id"]: p for p in await list_pairs(http, pilot)}
    expected: Counter[tuple[str, str]] = Counter()
    for person in pilot.people:
        expected[(person.email, "registration")] += 1
    mentors_asked: set[str] = set()
    for mentee_id, proposal in proposals.items():  # by mentee: erasure took her id off her pair
        mentee, mentor = pilot.person(mentee_id), pilot.person(proposal["mentor_id"])
        if "declined" in proposal:
            declined_by = pilot.person(proposal["declined"]["mentor_id"])
            expected[(mentee.email, "proposal")] += 1
            expected[(declined_by.email, "proposal")] += 1
            expected[(mentee.email, "declined")] += 1
        expected[(mentee.email, "proposal")] += 1
        expected[(mentor.email, "proposal")] += 1
        for person in (mentee, mentor):
            for kind in ("introduction", "check-in", "term"):
                expected[(person.email, kind)] += 1
        if pairs[proposal["pair_id"]]["end_reason"] == "withdrawn":
            expected[(mentor.email, "ended")] += 1  # the leaver herself is written to no more
        mentors_asked.add(mentor.email)
    for email in [p.email for p in mentees(pilot)] + sorted(mentors_asked):
        expected[(email, "baseline")] += 1
        expected[(email, "follow-up")] += 1

    def received() -> Counter[tuple[str, str]]:
        mine = read_messages(pilot.maildir, to=pilot.run)
        return Counter((str(m["To"]).split("<")[-1].rstrip(">"), kind_of(m["Subject"])) for m in mine)

    async def all_arrived() -> bool:
        return received() == expected

    try:
        await eventually(all_arrived, "the SMTP sink holds exactly the required emails", timeout=60)
    except AssertionError:
        got = received()
        missing, extra = expected - got, got - expected
        raise AssertionError(f"missing {dict(missing)}; unexpected {dict(extra)}") from None
    await asyncio.sleep(3)  # and nothing more arrives
    assert received() == expected


def kind_of(subject: str) -> str:
    """Which message of the procedure a subject belongs to."""
    for kind, marker in (
        ("registration", "Your registration with"),
        ("proposal", "We propose"),
        ("declined", "Your proposed match with"),
        ("introduction", "Introducing your"),
        ("check-in", "Checking in"),
        ("term", "continue or conclude"),
        ("ended", "has ended"),
        ("baseline", "as your mentoring begins"),
        ("follow-up", "six-month questionnaire"),
    ):
        if marker in subject:
            return kind
    return subject


async def _ok(pending: Awaitable[httpx.Response]) -> bool:
    return (await pending).status_code == 200


def _address_of(person: Person) -> str:
    """A network address of her own (a documentation range), the same all run."""
    digest = hashlib.sha256(person.key.encode()).digest()
    return f"198.51.{digest[0]}.{digest[1]}"
