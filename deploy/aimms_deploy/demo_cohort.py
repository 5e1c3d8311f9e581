"""A demo cohort, loaded through the public HTTP APIs only: people register, mentees name their
top three, and the coordinator runs a cohort round.

It is what a medical school's portal and a scheme coordinator would do, so it doubles as a smoke
test of the running platform. Loading it again changes nothing once the round has run.
"""

import asyncio
import random
import time
from dataclasses import dataclass
from typing import Any

import httpx

PROGRAMME = "aimms-mentoring"
# The demo programme's coordinators: its daily digest, its safeguarding concerns and waiting mentees.
COORDINATORS = ("coordinators@demo-university.ac.uk",)
INSTITUTIONS = ("demo-university", "northgate", "riverside")
DOMAINS = {"demo-university": "demo-university.ac.uk", "northgate": "northgate.ac.uk", "riverside": "riverside.ac.uk"}
FIRST_NAMES = (
    "Amina",
    "Adaeze",
    "Bisi",
    "Chiamaka",
    "Deepa",
    "Farah",
    "Funmi",
    "Grace",
    "Hana",
    "Ifeoma",
    "Jasmin",
    "Kemi",
    "Layla",
    "Maryam",
    "Nadia",
    "Nkechi",
    "Priya",
    "Rukhsana",
    "Sade",
    "Shabnam",
    "Tara",
    "Uzma",
    "Yetunde",
    "Zainab",
    "Anjali",
    "Efua",
    "Halima",
    "Meera",
    "Noor",
    "Sunita",
)
SURNAMES = (
    "Okafor",
    "Adeyemi",
    "Begum",
    "Chowdhury",
    "Das",
    "Ekwueme",
    "Farooq",
    "Gupta",
    "Hussain",
    "Iqbal",
    "Jones",
    "Kaur",
    "Mensah",
    "Nwosu",
    "Osei",
    "Patel",
    "Rahman",
    "Shah",
    "Tiwari",
    "Uddin",
)
INTERESTS = (
    "cardiology",
    "global health",
    "health inequalities",
    "medical education",
    "oncology",
    "genomics",
    "public health",
    "mental health",
    "infectious diseases",
    "clinical trials",
)
# (seniority, role): mentors are senior, mentees earlier in their careers; two are both.
COHORT = (
    [("Professor", "mentor")] * 4
    + [("Associate professor", "mentor")] * 4
    + [("Senior lecturer", "mentor")] * 4
    + [("Senior lecturer", "both")] * 2
    + [("Lecturer", "mentee")] * 6
    + [("Postdoctoral researcher", "mentee")] * 6
    + [("PhD student", "mentee")] * 6
)
SCALE = ("PhD student", "Postdoctoral researcher", "Lecturer", "Senior lecturer", "Associate professor", "Professor")


@dataclass(frozen=True)
class Person:
    """One member of the demo cohort."""

    name: str
    email: str
    institution_id: str
    seniority: str
    role: str
    interests: tuple[str, ...]


def cohort(seed: int = 7) -> list[Person]:
    """The same people every time."""
    rng = random.Random(seed)
    people = []
    for i, (seniority, role) in enumerate(COHORT):
        first, last = FIRST_NAMES[i % len(FIRST_NAMES)], SURNAMES[(i * 7) % len(SURNAMES)]
        institution = INSTITUTIONS[i % len(INSTITUTIONS)]
        email = f"{first.lower()}.{last.lower()}@{DOMAINS[institution]}"
        interests = tuple(sorted(rng.sample(INTERESTS, 3)))
        people.append(Person(f"Dr {first} {last}", email, institution, seniority, role, interests))
    return people


async def load(
    registration_url: str, matching_url: str, notifications_url: str, admin_id: str, admin_secret: str
) -> dict[str, Any]:
    """Name the coordinators, register the cohort, submit the mentees' choices, run the round; return its report."""
    async with httpx.AsyncClient(base_url=registration_url, timeout=30) as registration:
        form = {"grant_type": "client_credentials", "client_id": admin_id, "client_secret": admin_secret}
        token = (await registration.post("/oauth/token", data=form)).raise_for_status().json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        registration.headers.update(auth)
        async with httpx.AsyncClient(base_url=notifications_url, headers=auth, timeout=30) as notifications:
            digest = {"recipients": list(COORDINATORS), "enabled": True, "hour_utc": 7}
            (await notifications.put(f"/programmes/{PROGRAMME}/digest", json=digest)).raise_for_status()
        async with httpx.AsyncClient(base_url=matching_url, headers=auth, timeout=60) as matching:
            earlier = (await matching.get(f"/programmes/{PROGRAMME}/rounds")).raise_for_status().json()
            if earlier:
                return earlier[0]
            people = cohort()
            ids = await _register(registration, people)
            await _choose(matching, people, ids)
            await _until_matching_knows(matching, people, ids)
            return (await matching.post(f"/programmes/{PROGRAMME}/rounds")).raise_for_status().json()


async def _register(registration: httpx.AsyncClient, people: list[Person]) -> dict[str, str]:
    for person in people:
        body: dict[str, Any] = {
            "name": person.name,
            "email": person.email,
            "institution_id": person.institution_id,
            "programme_id": PROGRAMME,
            "role": person.role,
            "job_title": person.seniority,
            "seniority": person.seniority,
            "pathway": "clinical",
            "research_interests": list(person.interests),
            "consents": {
                "privacy_notice": "1",
                "code_of_conduct": "1",
                "confidentiality": "1",
                "evaluation": "PIS-1",  # consent to the evaluation: its questionnaires will be sent
            },
            "confirmed_eligibility": ["woman", "ethnic-minority", "academic-medicine"],
        }
        if person.role in ("mentor", "both"):
            body |= {"offers": "Career guidance and grant writing", "mentor_capacity": 2, "publish_profile": True}
        if person.role in ("mentee", "both"):
            body |= {"seeks": "Advice on an academic career"}
        response = await registration.post("/participants", json=body)
        if response.status_code not in (201, 409):  # 409: registered by an earlier, interrupted load
            response.raise_for_status()
    listed = (await registration.get("/participants", params={"programme_id": PROGRAMME})).raise_for_status()
    return {p["email"]: p["participant_id"] for p in listed.json()}


async def _until_matching_knows(
    matching: httpx.AsyncClient, people: list[Person], ids: dict[str, str], timeout: float = 60
) -> None:
    """Before the round: wait until matching's directory has every mentor, so the round offers all their places."""
    mentors = {ids[p.email] for p in people if p.role in ("mentor", "both")}
    deadline = time.monotonic() + timeout
    while True:
        listed = (await matching.get("/directory", params={"programme_id": PROGRAMME})).json()
        if mentors <= {entry["participant_id"] for entry in listed}:
            return
        if time.monotonic() > deadline:
            raise TimeoutError("matching has not received the demo registrations; is Kafka up?")
        await asyncio.sleep(0.5)


async def send(client: httpx.AsyncClient, method: str, url: str, timeout: float = 60, **kwargs: Any) -> httpx.Response:
    """A request as a portal sends it: a 409 with Retry-After (not yet known there) is sent again after the wait."""
    deadline = time.monotonic() + timeout
    while True:
        response = await client.request(method, url, **kwargs)
        retry_after = response.headers.get("Retry-After")
        if response.status_code != 409 or retry_after is None or time.monotonic() > deadline:
            return response.raise_for_status()
        await asyncio.sleep(float(retry_after))


async def _choose(matching: httpx.AsyncClient, people: list[Person], ids: dict[str, str]) -> None:
    """Each mentee names three senior mentors, preferring shared interests (popular mentors get more requests)."""
    mentors = [p for p in people if p.role in ("mentor", "both")]
    for mentee in (p for p in people if p.role in ("mentee", "both")):
        eligible = [m for m in mentors if SCALE.index(m.seniority) > SCALE.index(mentee.seniority) and m != mentee]
        ranked = sorted(eligible, key=lambda m: (-len(set(m.interests) & set(mentee.interests)), m.email))
        choices = [ids[m.email] for m in ranked[:3]]
        await send(matching, "PUT", f"/mentees/{ids[mentee.email]}/preferences", json={"choices": choices})
