"""The portal's pages in a real browser (Debian's chromium, driven by Playwright), on the running platform.

A participant registers with consent to the evaluation in a programme whose baseline questionnaire
goes out at registration; the invitation email's link opens the portal. She completes the
questionnaire with the keyboard alone, meets an error on the way, and finds her used link refused in
the API's own words. Every page is scanned with axe-core (WCAG 2.2 AA rules) and photographed.
"""

import asyncio
import re
import shutil
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Browser, Page, async_playwright

from aimms_deploy.local_stack import SERVICES, LocalStack
from aimms_deploy.paths import REPO_ROOT
from aimms_deploy.smtp_sink import read_messages

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

SCREENSHOTS = REPO_ROOT / "var" / "screenshots"
# The rules of WCAG 2.0-2.2 at levels A and AA, as axe-core tags them.
WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
GONE = "This survey link cannot be used: it is not valid, was already answered, or has expired."


@dataclass
class School:
    """A school and programme of its own for this run, with a baseline questionnaire sent at registration."""

    stack: LocalStack
    urls: dict[str, str]
    admin: dict[str, str]
    portal: dict[str, str]  # the school's own portal credential
    programme: str
    domain: str
    run: str

    async def register(self, http: httpx.AsyncClient, key: str, role: str, **extra: Any) -> tuple[str, str]:
        """A participant registered through the school's portal: (participant id, email)."""
        email = f"{key}.{self.run}@{self.domain}"
        person = {
            "name": f"Dr {key.capitalize()} Okafor",
            "email": email,
            "programme_id": self.programme,
            "role": role,
            "job_title": "Professor of Medicine" if role == "mentor" else "Clinical Lecturer",
            "seniority": "Professor" if role == "mentor" else "Lecturer",
            "pathway": "clinical",
            "research_interests": ["global health", "medical education"],
            "consents": {"privacy_notice": "1", "code_of_conduct": "1", "confidentiality": "1", "evaluation": "1"},
        } | extra
        response = await _ok(http.post(f"{self.urls['registration']}/participants", json=person, headers=self.portal))
        return response.json()["participant_id"], email

    async def links(self, email: str, path: str, label: str = "", count: int = 1) -> list[str]:
        """Portal links under `path` in the emails she received (after `label` on their line), once `count` came."""
        pattern = re.compile(re.escape(label) + r"\s*(" + re.escape(self.urls["portal"] + path) + r"\S+)")
        maildir = Path(self.stack.endpoints()["SMTP_SINK_DIR"])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            found = [
                link
                for message in read_messages(maildir, to=email)
                for link in pattern.findall(message.get_body(("plain",)).get_content())
            ]
            if len(found) >= count:
                return found
            await asyncio.sleep(0.3)
        raise AssertionError(f"{count} email(s) with a {path} link did not reach {email} within 60 s")


@pytest.fixture(scope="module")
async def school() -> School:
    stack = LocalStack()
    stack.start(SERVICES)
    urls = {s.name: s.endpoint for s in stack.status(SERVICES)}
    run = uuid.uuid4().hex[:8]
    async with httpx.AsyncClient(timeout=30) as http:
        secrets = stack.registration_secrets()
        admin = await _token(
            http,
            urls,
            secrets["REGISTRATION_BOOTSTRAP_ADMIN_CLIENT_ID"],
            secrets["REGISTRATION_BOOTSTRAP_ADMIN_SECRET"],
        )
        name = f"pages-{run}"
        domain = f"{name}.ac.uk"
        institution = {
            "institution_id": name,
            "name": "Pages School",
            "email_domains": [domain],
            "contact_email": f"office@{domain}",
        }
        await _ok(http.post(f"{urls['registration']}/institutions", json=institution, headers=admin))
        scopes = ["participants:write", "participants:read"]
        credential = {"name": f"{name} portal", "institution_id": name, "scopes": scopes}
        secret = (await _ok(http.post(f"{urls['registration']}/credentials", json=credential, headers=admin))).json()
        portal = await _token(http, urls, secret["client_id"], secret["client_secret"])
        programme = {
            "programme_id": name,
            "name": f"AIMMS Mentoring (pages {run})",
            "roles_offered": ["mentor", "mentee"],
            "seniority_scale": ["Lecturer", "Professor"],
        }
        await _ok(http.post(f"{urls['registration']}/programmes", json=programme, headers=admin))
        surveys = urls["surveys"]
        policy = {"baseline_on": "registration", "follow_up": False, "valid_for": "P1D", "max_reminders": 0}
        await _ok(http.put(f"{surveys}/programmes/{name}/survey-policy", json=policy, headers=admin))
        definition = (await http.get(f"{surveys}/questionnaires/aimms-mentoring/baseline", headers=admin)).json()
        draft = {k: v for k, v in definition.items() if k not in ("programme_id", "wave", "version")}
        await _ok(http.post(f"{surveys}/questionnaires/{name}/baseline", json=draft, headers=admin))
    return School(stack, urls, admin, portal, name, domain, run)


@dataclass
class Invited:
    email: str
    link: str  # the portal's page, as the invitation email gives it


@pytest.fixture(scope="module")
async def invited(school: School) -> Invited:
    """A new participant's baseline invitation, from the email the platform sent her."""
    async with httpx.AsyncClient(timeout=30) as http:
        _, email = await school.register(http, "amina", "mentee", seeks="Advice on a fellowship application")
    [link] = await school.links(email, "/surveys/")
    return Invited(email, link)


@dataclass
class Proposed:
    """Two mentees who both chose one mentor (two places), and the proposals' emails."""

    mentor: str
    first: str  # the mentee who accepts
    second: str  # the mentee who declines


@pytest.fixture(scope="module")
async def proposed(school: School, invited: Invited) -> Proposed:
    """Amina (invited above, naming nobody) waits too: three mentees for the mentor's two places."""
    matching = school.urls["matching"]
    async with httpx.AsyncClient(timeout=30) as http:
        mentor_id, mentor = await school.register(
            http, "grace", "mentor", offers="Fellowship applications", mentor_capacity=2, publish_profile=True
        )
        mentees = [await school.register(http, key, "mentee", seeks="Career advice") for key in ("bisi", "chioma")]

        async def listed() -> bool:
            url = f"{matching}/directory"
            entries = (await http.get(url, params={"programme_id": school.programme}, headers=school.admin)).json()
            return mentor_id in {e["participant_id"] for e in entries}

        await _eventually(listed, "matching lists the mentor")
        for mentee_id, _ in mentees:
            path = f"{matching}/mentees/{mentee_id}/preferences"
            await _eventually(lambda path=path: _known(http.get(path, headers=school.admin)), "matching knows her")
            await _ok(http.put(path, json={"choices": [mentor_id]}, headers=school.portal))
        ran = await _ok(http.post(f"{matching}/programmes/{school.programme}/rounds", headers=school.admin))
        assert ran.json()["proposed"] == 2, ran.text
    return Proposed(mentor, mentees[0][1], mentees[1][1])


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("Debian's chromium is not installed: `make browser` installs it (apt-get install chromium)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield launched
        await launched.close()


@pytest.fixture(scope="module")
def shots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


async def test_a_questionnaire_is_answered_with_the_keyboard_alone(
    invited: Invited, browser: Browser, shots: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = await browser.new_page(viewport={"width": 1000, "height": 900})
    response = await page.goto(invited.link)
    assert response is not None and response.status == 200
    assert await page.title() == "AIMMS Mentoring: baseline questionnaire – AIMMS Mentoring"
    await _inspect(page, shots / "1-questionnaire.png")

    # A wish named under "other" without ticking "Other": refused, nothing recorded, the answers kept.
    await by_keyboard(
        page,
        {
            "job_title": "Clinical Lecturer",
            "age_band": "30-39",
            "career_more_challenging": "yes",
            "career_more_challenging.text": "Few senior role models who look like me.",
            "want_from_scheme": {"career-advice", "contacts-networks"},
            "want_from_scheme.text": "Sponsorship for a fellowship",
        },
    )
    await page.wait_for_load_state()
    summary = page.get_by_role("alert")
    assert "There is a problem with your answers" in await summary.inner_text()
    assert "tick “Other” as well" in await page.locator("#err-want_from_scheme").inner_text()
    assert await page.locator("#q-age_band-30-39").is_checked()
    assert await page.locator("#q-want_from_scheme-text").input_value() == "Sponsorship for a fellowship"
    await _inspect(page, shots / "2-questionnaire-error.png")

    # From the error summary's link to the item, and on: tick "Other" and send.
    await page.keyboard.press("Tab")
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.getAttribute('href')") == "#q-want_from_scheme"
    await page.keyboard.press("Enter")
    await by_keyboard(page, {"want_from_scheme": {"career-advice", "contacts-networks", "other"}})
    await page.wait_for_url(re.compile(r"/thanks\b"))
    assert "your answers are recorded" in await page.get_by_role("heading", level=1).inner_text()
    await _inspect(page, shots / "3-thanks.png")

    # The link is used up: the page says so in the API's own words.
    used = await page.goto(invited.link)
    assert used is not None and used.status == 410
    assert GONE in await page.locator("main").inner_text()
    await _inspect(page, shots / "4-link-used.png")
    await page.close()
    with capsys.disabled():
        print(f"\nscreenshots of the portal's pages: {shots}")


async def test_a_proposal_is_accepted_and_declined_from_its_links(
    school: School, proposed: Proposed, browser: Browser, shots: Path
) -> None:
    page = await browser.new_page(viewport={"width": 1000, "height": 900})

    # The first mentee sees who was proposed and why, and accepts.
    [accept] = await school.links(proposed.first, "/answers/", "Accept:")
    response = await page.goto(accept)
    assert response is not None and response.status == 200
    main = await page.locator("main").inner_text()
    assert "Your proposed mentor" in main and "Professor of Medicine" in main and "Fellowship applications" in main
    assert "She was your first choice." in main and "global health, medical education" in main
    await _inspect(page, shots / "5-proposal.png")
    await page.get_by_role("button", name="Accept the proposal").click()
    await page.wait_for_url(re.compile(r"/answered/accepted$"))
    assert "waiting for the other person" in await page.locator("main").inner_text()
    await _inspect(page, shots / "6-proposal-accepted.png")

    # The second declines, with a reason; the link then shows the proposal closed.
    [decline] = await school.links(proposed.second, "/answers/", "Decline:")
    await page.goto(decline)
    await page.get_by_label("Why are you declining? (optional)").fill("I have moved to a research post abroad.")
    await _inspect(page, shots / "7-proposal-decline.png")
    await page.get_by_role("button", name="Decline the proposal").click()
    await page.wait_for_url(re.compile(r"/answered/declined$"))
    await _inspect(page, shots / "8-proposal-declined.png")
    await page.goto(decline)
    assert "This proposal was declined, so it is closed." in await page.locator("main").inner_text()
    assert await page.get_by_role("button").count() == 0

    # The mentor accepts the open one: both accepted, the mentoring begins.
    answered = []
    for link in await school.links(proposed.mentor, "/answers/", "Accept:", count=2):
        await page.goto(link)
        if await page.get_by_role("button", name="Accept the proposal").count():
            assert "A mentee proposed to you" in await page.locator("h1").inner_text()
            assert "You were her first choice." in await page.locator("main").inner_text()
            await page.get_by_role("button", name="Accept the proposal").click()
            await page.wait_for_url(re.compile(r"/answered/started$"))
            await _inspect(page, shots / "9-proposal-started.png")
            answered.append(link)
    assert len(answered) == 1, "one proposal open to her, the other declined"

    # A tampered link is refused in matching's words.
    refused = await page.goto(accept[:-3] + "xyz")
    assert refused is not None and refused.status == 410
    assert "this answer link is not valid" in await page.locator("main").inner_text()
    await page.close()


@dataclass
class Evaluated:
    """Three mentees and three mentors who answered their baseline; one whose first email bounced."""

    bounced: str  # her email address


@pytest.fixture(scope="module")
async def evaluated(school: School, proposed: Proposed) -> Evaluated:
    """Registered after the round (and naming no mentor), so they wait and the round above stays as it was."""
    surveys = school.urls["surveys"]
    async with httpx.AsyncClient(timeout=30) as http:
        mentor = {"offers": "Careers advice", "mentor_capacity": 1, "publish_profile": True}
        people = [await school.register(http, key, "mentee", seeks="Advice") for key in ("dara", "efua", "fola")]
        people += [await school.register(http, key, "mentor", **mentor) for key in ("gita", "hana", "ines")]
        _, bounced = await school.register(http, "bounce-once-jo", "mentee", seeks="Advice")
        for _, email in people:
            [link] = await school.links(email, "/surveys/")
            url = f"{surveys}/surveys/{link.rsplit('/', 1)[1]}"
            view = (await _ok(http.get(url))).json()
            await _ok(http.post(url, json={"answers": plausible_answers(view)}))
    return Evaluated(bounced)


def plausible_answers(view: dict[str, Any]) -> dict[str, Any]:
    """The first option of each choice, yes, a mid-range scale value."""
    kinds = {"single_choice": lambda i: i["options"][0]["id"], "multiple_choice": lambda i: [i["options"][0]["id"]]}
    kinds |= {"yes_no": lambda i: True, "agreement": lambda i: 4, "stars": lambda i: 4, "scale_10": lambda i: 8}
    kinds |= {"number": lambda i: 2}
    return {item["id"]: kinds[item["kind"]](item) for item in view["items"] if item["kind"] in kinds}


async def test_coordinators_sign_in_read_the_dashboard_and_send_a_failed_email_again(
    school: School, evaluated: Evaluated, browser: Browser, shots: Path
) -> None:
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = await context.new_page()
    portal = school.urls["portal"]
    secrets = school.stack.registration_secrets()

    # Not signed in: the dashboard sends her to sign in; a wrong secret is refused beside the form.
    await page.goto(f"{portal}/coordinators")
    assert page.url.endswith("/coordinators/sign-in")
    await page.get_by_label("Client ID").fill(secrets["REGISTRATION_BOOTSTRAP_ADMIN_CLIENT_ID"])
    await page.get_by_label("Client secret").fill("not the secret")
    await page.get_by_role("button", name="Sign in").click()
    assert "The client ID or secret is not right." in await page.get_by_role("alert").inner_text()
    await _inspect(page, shots / "10-sign-in-refused.png")
    await page.get_by_label("Client secret").fill(secrets["REGISTRATION_BOOTSTRAP_ADMIN_SECRET"])
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(re.compile(r"/coordinators$"))
    [cookie] = [c for c in await context.cookies() if c["name"] == "aimms_coordinator"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/coordinators"
    await _inspect(page, shots / "11-programmes.png")

    # The programme's funnel and its round.
    await page.get_by_role("link", name=f"AIMMS Mentoring (pages {school.run})").click()
    main = page.locator("main")
    await page.wait_for_selector("text=From interest to follow-up")
    funnel = await page.get_by_role("row", name=re.compile("Registered")).first.inner_text()
    assert int(funnel.split()[-1]) >= 10, funnel
    assert "3 mentees waiting, 1 mentor: 2 pairs proposed, 1 not matched; blocking pairs: 0" in await main.inner_text()
    assert "66.7%" in await page.get_by_role("row", name=re.compile("first choice")).first.inner_text()
    await _inspect(page, shots / "12-funnel-and-rounds.png")

    # The evaluation: roles side by side, a total across them, and the CSV.
    await page.get_by_role("link", name="Evaluation").click()
    table = page.locator("table", has_text="Age band")
    assert await table.get_by_role("columnheader", name="All roles").count() == 1
    assert "Mentees" in await table.inner_text() and "Mentors" in await table.inner_text()
    await _inspect(page, shots / "13-evaluation.png")
    async with page.expect_download() as download:
        await page.get_by_role("link", name="Download the tables as CSV").click()
    csv = Path(await (await download.value).path()).read_text()
    assert csv.startswith("wave,role,item_id,question,measure,option,label,value")

    # The bounced email is listed as failed and sent again; the sink then has it.
    await page.get_by_role("link", name="Emails not sent").click()
    deadline = time.monotonic() + 60
    while not await page.get_by_role("button", name=re.compile("^Send again")).count():
        assert time.monotonic() < deadline, "the bounced email was not reported failed within 60 s"
        await asyncio.sleep(0.5)
        await page.reload()
    assert "Mailbox unavailable" in await main.inner_text()
    await _inspect(page, shots / "14-emails-not-sent.png")

    # A post without the form's CSRF token does nothing and leads to sign-in.
    action = await page.locator("form:has(button:text-is('Send again'))").first.get_attribute("action")
    assert action is not None
    forged = await page.request.post(action, form={"csrf": "forged"})
    assert forged.url.endswith("/coordinators/sign-in")
    assert await page.get_by_role("button", name=re.compile("^Send again")).count() >= 1

    await page.get_by_role("button", name=re.compile("^Send again")).first.click()
    await page.wait_for_url(re.compile(r"/deliveries\b"))
    assert not await page.get_by_role("alert").count(), await main.inner_text()
    maildir = Path(school.stack.endpoints()["SMTP_SINK_DIR"])
    deadline = time.monotonic() + 60
    while not read_messages(maildir, to=evaluated.bounced):
        assert time.monotonic() < deadline, "the email sent again did not arrive within 60 s"
        await asyncio.sleep(0.5)

    # Signing out ends the session.
    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url(re.compile(r"/coordinators/sign-in$"))
    assert not [c for c in await context.cookies() if c["name"] == "aimms_coordinator"]
    await page.goto(f"{portal}/coordinators")
    assert page.url.endswith("/coordinators/sign-in")
    await context.close()


async def test_a_mentee_opens_her_page_from_an_emailed_link_chooses_mentors_downloads_her_data_and_withdraws(
    school: School, proposed: Proposed, browser: Browser, shots: Path
) -> None:
    portal, matching = school.urls["portal"], school.urls["matching"]
    async with httpx.AsyncClient(timeout=30) as http:
        esther_id, _ = await school.register(
            http, "esther", "mentor", offers="Clinical academic careers", mentor_capacity=1, publish_profile=True
        )
        folake_id, email = await school.register(http, "folake", "mentee", seeks="A route back into research")
        known = f"{matching}/mentees/{folake_id}/preferences"
        await _eventually(lambda: _known(http.get(known, headers=school.admin)), "matching knows her")

        async def listed() -> bool:
            url = f"{matching}/directory"
            entries = (await http.get(url, params={"programme_id": school.programme}, headers=school.admin)).json()
            return esther_id in {e["participant_id"] for e in entries}

        await _eventually(listed, "matching lists the new mentor")
    context = await browser.new_context(viewport={"width": 1000, "height": 900}, accept_downloads=True)
    page = await context.new_page()

    # She asks for a link with her address; the answer would be the same for any address.
    await page.goto(f"{portal}/me")
    assert await page.get_by_role("heading", level=1).inner_text() == "Your programme's page"
    await _inspect(page, shots / "15-my-page-ask.png")
    await page.get_by_label("The email address you registered with").fill(email)
    await page.get_by_role("button", name="Email me a link").click()
    assert "Check your email" in await page.get_by_role("heading", level=1).inner_text()
    await _inspect(page, shots / "16-my-page-link-sent.png")

    # The emailed link opens a page with one button (a mail scanner's visit uses nothing up).
    [link] = await school.links(email, "/me/links/")
    await page.goto(link)
    await _inspect(page, shots / "17-my-page-open.png")
    await page.get_by_role("button", name="Open my page").click()
    await page.wait_for_url(re.compile(r"/me$"))
    main = await page.locator("main").inner_text()
    assert "Dr Folake Okafor" in main and school.programme not in main and "AIMMS Mentoring (pages" in main
    assert "Nothing is proposed yet" in main and "6 months" in main
    mentors = page.get_by_role("table", name="Mentors you can choose")
    assert "1 of 1 place free" in await mentors.get_by_role("row", name=re.compile("Dr Esther Okafor")).inner_text()
    await _inspect(page, shots / "18-my-page.png")

    # Her top three: the new mentor first, then the one she shares with others.
    await page.get_by_label("First choice").select_option(label="Dr Esther Okafor, Professor of Medicine")
    grace = await page.locator("#choice2 option", has_text="Dr Grace Okafor").get_attribute("value")
    await page.get_by_label("Second choice").select_option(value=grace)
    await page.get_by_role("button", name="Save my choices").click()
    await page.wait_for_url(re.compile(r"/me\?saved=choices$"))
    assert "Your choices are saved" in await page.get_by_role("status").inner_text()
    assert await page.get_by_label("First choice").input_value() == esther_id
    await _inspect(page, shots / "19-my-page-choices-saved.png")
    async with httpx.AsyncClient(timeout=30) as http:
        saved = (await http.get(known, headers=school.admin)).json()
    assert saved["choices"][0] == esther_id and len(saved["choices"]) == 2

    # Her data, as a file.
    async with page.expect_download() as downloading:
        await page.get_by_role("link", name="Download my data (JSON)").click()
    download = await downloading.value
    assert download.suggested_filename == "my-aimms-data.json"
    exported = Path(await download.path()).read_text()
    assert email in exported and "A route back into research" in exported

    # Withdrawing asks her to confirm; then she is out, and told so.
    await page.get_by_role("button", name="Withdraw").click()
    assert "Tick the box to confirm" in await page.get_by_role("alert").inner_text()
    await _inspect(page, shots / "20-my-page-withdraw-unconfirmed.png")
    await page.get_by_label("Why are you leaving? (optional)").fill("A new post abroad")
    await page.get_by_label(re.compile("I want to withdraw")).check()
    await page.get_by_role("button", name="Withdraw").click()
    await page.wait_for_url(re.compile(r"/me\?saved=withdrawn$"))
    main = await page.locator("main").inner_text()
    assert "You have withdrawn" in main and "Withdrawn on" in main and "Choose your mentors" not in main
    await _inspect(page, shots / "21-my-page-withdrawn.png")

    # The link was used once and for all; signing out ends the session.
    await page.goto(link)
    await page.get_by_role("button", name="Open my page").click()
    assert "cannot be used" in await page.locator("main").inner_text()
    await page.goto(f"{portal}/me")
    await page.get_by_role("button", name="Sign out").click()
    assert await page.get_by_role("heading", level=1).inner_text() == "Your programme's page"
    assert not [c for c in await context.cookies() if c["name"] == "aimms_participant"]
    await context.close()


async def test_coordinators_pair_a_waiting_mentee_by_hand_and_she_reads_their_reason(
    school: School, invited: Invited, proposed: Proposed, browser: Browser, shots: Path
) -> None:
    """Amina named nobody and the round had no place for her; a lecturer mentor, whom the engine's
    seniority rule passes over for her, is proposed by hand."""
    portal, matching = school.urls["portal"], school.urls["matching"]
    async with httpx.AsyncClient(timeout=30) as http:
        kemi_id, _ = await school.register(
            http,
            "kemi",
            "mentor",
            job_title="Lecturer in Global Health",
            seniority="Lecturer",
            offers="Grant writing",
            mentor_capacity=1,
            publish_profile=True,
        )

        async def listed() -> bool:
            url = f"{matching}/directory"
            entries = (await http.get(url, params={"programme_id": school.programme}, headers=school.admin)).json()
            return kemi_id in {e["participant_id"] for e in entries}

        await _eventually(listed, "matching lists the new mentor")
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    secrets = school.stack.registration_secrets()
    await page.goto(f"{portal}/coordinators/programmes/{school.programme}/waiting")
    await page.get_by_label("Client ID").fill(secrets["REGISTRATION_BOOTSTRAP_ADMIN_CLIENT_ID"])
    await page.get_by_label("Client secret").fill(secrets["REGISTRATION_BOOTSTRAP_ADMIN_SECRET"])
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(re.compile(r"/coordinators$"))
    await page.get_by_role("link", name=re.compile(r"pages " + school.run)).click()
    await page.get_by_role("link", name="Waiting mentees").click()
    amina = page.get_by_role("region", name="Dr Amina Okafor")
    assert "no mentor with a place free fitted her" in await amina.inner_text()
    await _inspect(page, shots / "22-waiting-mentees.png")

    # Without a reason: refused beside her form; then with one, proposed, and she leaves the list.
    await amina.get_by_label("Mentor for Dr Amina Okafor").select_option(kemi_id)
    await amina.get_by_role("button", name="Propose this pair").click()
    assert "Give the reason for this match" in await page.get_by_role("alert").inner_text()
    await _inspect(page, shots / "23-waiting-reason-missing.png")
    amina = page.get_by_role("region", name="Dr Amina Okafor")
    await amina.get_by_label("Why this match").fill("You both work on maternal health in West Africa.")
    await amina.get_by_role("button", name="Propose this pair").click()
    await page.wait_for_url(re.compile(r"/waiting\?proposed="))
    assert "Proposed." in await page.get_by_role("status").inner_text()
    assert await page.get_by_role("region", name="Dr Amina Okafor").count() == 0
    await context.close()

    # Her proposal's page gives the coordinators' reason first.
    [accept] = await school.links(invited.email, "/answers/", "Accept:")
    mine = await browser.new_page()
    await mine.goto(accept)
    reasons = await mine.locator("main").inner_text()
    assert "The scheme's coordinators chose this match: You both work on maternal health in West Africa." in reasons
    await _inspect(mine, shots / "24-proposal-by-hand.png")
    await mine.close()


async def test_a_mentee_raises_a_concern_and_a_coordinator_pauses_then_resumes_the_pair(
    school: School, proposed: Proposed, browser: Browser, shots: Path
) -> None:
    """The first mentee's partnership started in the proposal test; she raises a concern from her page."""
    office = f"office.{school.run}@{school.domain}"
    async with httpx.AsyncClient(timeout=30) as http:
        digest = {"recipients": [office], "enabled": False}
        url = f"{school.urls['notifications']}/programmes/{school.programme}/digest"
        await _ok(http.put(url, json=digest, headers=school.admin))
        await _ok(http.post(f"{school.urls['registration']}/page-links", json={"email": proposed.first}))
        # The programme asks its pairs for ideas for change, as a reverse-mentoring programme would.
        registration = school.urls["registration"]
        settings = (await _ok(http.get(f"{registration}/programmes/{school.programme}", headers=school.admin))).json()
        asking = {k: v for k, v in settings.items() if k != "programme_id"} | {"ideas_for_change": True}
        await _ok(http.put(f"{registration}/programmes/{school.programme}", json=asking, headers=school.admin))
    [link] = await school.links(proposed.first, "/me/links/")
    page = await browser.new_page(viewport={"width": 1000, "height": 900})
    await page.goto(link)
    await page.get_by_role("button", name="Open my page").click()

    # Her first meeting, the trial: recording it ends the trial; the notes are for the pair alone.
    assert await page.get_by_role("button", name="End the partnership after the trial").count() == 1
    await page.get_by_label("Date you met").fill(datetime.now(UTC).date().isoformat())
    await page.get_by_label("Notes (optional, for the two of you alone)").fill("Agreed to meet monthly.")
    await page.get_by_role("button", name="Record the meeting").click()
    await page.wait_for_url(re.compile(r"/me\?saved=meeting$"))
    assert "Your meeting is recorded." in await page.get_by_role("status").inner_text()
    assert "Agreed to meet monthly." in await page.locator("main").inner_text()
    assert await page.get_by_role("button", name="End the partnership after the trial").count() == 0
    await _inspect(page, shots / "29-meeting-recorded.png")
    await page.get_by_label("An idea for change").fill("Publish the criteria for promotion to senior lecturer.")
    await page.get_by_role("button", name="Record the idea").click()
    await page.wait_for_url(re.compile(r"/me\?saved=idea$"))
    assert "Your idea is recorded" in await page.get_by_role("status").inner_text()
    await _inspect(page, shots / "32-idea-recorded.png")

    await page.get_by_role("link", name="Raise a concern about this match").click()
    await page.get_by_role("button", name="Send to the coordinators").click()
    assert "Tell the coordinators what happened." in await page.get_by_role("alert").inner_text()
    await page.get_by_label("What happened?").fill("Meetings keep being cancelled at the last minute.")
    await page.get_by_label("Pause the match while they look into it").check()
    await _inspect(page, shots / "25-concern-form.png")
    await page.get_by_role("button", name="Send to the coordinators").click()
    assert "Your concern reached the coordinators" in await page.get_by_role("heading", level=1).inner_text()
    await _inspect(page, shots / "26-concern-sent.png")
    await page.close()

    # The coordinators' email links to the page where they read it and decide.
    [review] = await school.links(office, "/coordinators/programmes/", "")
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    coordinator = await context.new_page()
    secrets = school.stack.registration_secrets()
    await coordinator.goto(review)
    await coordinator.get_by_label("Client ID").fill(secrets["REGISTRATION_BOOTSTRAP_ADMIN_CLIENT_ID"])
    await coordinator.get_by_label("Client secret").fill(secrets["REGISTRATION_BOOTSTRAP_ADMIN_SECRET"])
    await coordinator.get_by_role("button", name="Sign in").click()
    await coordinator.wait_for_url(re.compile(r"/coordinators$"))
    await coordinator.goto(review)
    concern = coordinator.get_by_role("region", name=re.compile("From Dr Bisi Okafor"))
    assert "Meetings keep being cancelled" in await concern.inner_text()
    assert "Pause the pair" in await concern.inner_text()
    await _inspect(coordinator, shots / "27-concerns.png")
    await concern.get_by_label("Pause the pair").check()
    await concern.get_by_label("What was done (for the record)").fill("Called both; paused for two weeks.")
    await concern.get_by_role("button", name="Record the decision").click()
    assert "The pair is paused" in await coordinator.get_by_role("status").inner_text()
    assert "No concern is open." in await coordinator.locator("main").inner_text()
    await _inspect(coordinator, shots / "28-concern-paused.png")
    await coordinator.get_by_role("button", name=re.compile("Resume: Dr Bisi Okafor")).click()
    assert "The pair is resumed" in await coordinator.get_by_role("status").inner_text()
    assert "No pair is paused." in await coordinator.locator("main").inner_text()
    await context.close()


async def test_someone_whose_university_is_not_a_member_joins_from_the_schemes_own_page(
    school: School, browser: Browser, shots: Path
) -> None:
    registration, portal = school.urls["registration"], school.urls["portal"]
    async with httpx.AsyncClient(timeout=30) as http:
        settings = (await _ok(http.get(f"{registration}/programmes/{school.programme}", headers=school.admin))).json()
        opened = {k: v for k, v in settings.items() if k != "programme_id"} | {
            "open_to_non_members": True,
            "audience": "women from ethnic minority backgrounds in academic medicine",
        }
        await _ok(http.put(f"{registration}/programmes/{school.programme}", json=opened, headers=school.admin))
    email = f"ama.{school.run}@kingston.ac.uk"
    page = await browser.new_page(viewport={"width": 1000, "height": 900})
    response = await page.goto(f"{portal}/join/{school.programme}")
    assert response is not None and response.status == 200
    assert (await page.get_by_role("heading", level=1).inner_text()).startswith("Join AIMMS Mentoring (pages")
    await page.get_by_label("Your full name").fill("Dr Ama Mensah")
    await page.get_by_label("Your work email address").fill("not an address")
    await page.get_by_label("Your university or employer").fill("Kingston University")
    await page.get_by_role("button", name="Send my interest").click()
    assert "Enter your work email address" in await page.get_by_role("alert").inner_text()
    await _inspect(page, shots / "30-join-error.png")
    await page.get_by_label("Your work email address").fill(email)
    await page.get_by_role("button", name="Send my interest").click()
    assert "Thank you for your interest" in await page.get_by_role("heading", level=1).inner_text()
    await _inspect(page, shots / "31-join-thanks.png")
    maildir = Path(school.stack.endpoints()["SMTP_SINK_DIR"])
    await _eventually(lambda: _arrived(maildir, email), "the welcome pack reaches her")
    missing = await page.goto(f"{portal}/join/no-such-programme")
    assert missing is not None and missing.status == 404
    await page.close()


async def test_a_peer_reads_her_circle_and_coordinators_read_the_programmes_circles(
    school: School, browser: Browser, shots: Path
) -> None:
    """A circles programme of the same school, as data: five peers and a facilitator, one round."""
    registration, matching, portal = school.urls["registration"], school.urls["matching"], school.urls["portal"]
    circles = f"{school.programme}-circles"
    programme = {
        "programme_id": circles,
        "name": f"Peer circles (pages {school.run})",
        "kind": "circles",
        "roles_offered": ["peer", "facilitator"],
        "seniority_scale": ["Lecturer", "Professor"],
    }
    async with httpx.AsyncClient(timeout=30) as http:
        await _ok(http.post(f"{registration}/programmes", json=programme, headers=school.admin))
        people = [await school.register(http, f"peer{i}", "peer", programme_id=circles) for i in range(5)]
        people.append(await school.register(http, "facil", "facilitator", programme_id=circles, seniority="Professor"))
        for pid, _ in people:
            known = f"{matching}/mentees/{pid}/preferences"
            await _eventually(lambda known=known: _known(http.get(known, headers=school.admin)), "matching knows her")
        ran = await _ok(http.post(f"{matching}/programmes/{circles}/rounds", headers=school.admin))
        assert ran.json()["circles"] == 1, ran.text
        await _ok(http.post(f"{registration}/page-links", json={"email": people[0][1]}))

    # Her page: her circle by school, stage and shared interests, not a partnership or a choice of mentors.
    [link] = await school.links(people[0][1], "/me/links/")
    page = await browser.new_page(viewport={"width": 1000, "height": 900})
    await page.goto(link)
    await page.get_by_role("button", name="Open my page").click()
    await page.wait_for_url(re.compile(r"/me$"))
    main = await page.locator("main").inner_text()
    assert "Your mentoring circle" in main and "5 peers and a facilitator" in main and "Pages School" in main
    assert "global health, medical education" in main and "Choose your" not in main and "partnership" not in main
    await _inspect(page, shots / "32-my-circle.png")
    await page.close()

    # The coordinators' overview: the round's figures in circles' terms, and the circle.
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    secrets = school.stack.registration_secrets()
    await page.goto(f"{portal}/coordinators/programmes/{circles}")
    await page.get_by_label("Client ID").fill(secrets["REGISTRATION_BOOTSTRAP_ADMIN_CLIENT_ID"])
    await page.get_by_label("Client secret").fill(secrets["REGISTRATION_BOOTSTRAP_ADMIN_SECRET"])
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(re.compile(r"/coordinators$"))
    await page.get_by_role("link", name=f"Peer circles (pages {school.run})").click()
    await page.wait_for_selector("text=From interest to follow-up")
    main = await page.locator("main").inner_text()
    assert "5 peers waiting, 1 facilitator: 1 circle formed, 5 placed, 0 not placed" in main, main
    assert "Circles mixing institutions" in main
    row = await page.get_by_role("row", name=re.compile("5 peers and a facilitator")).inner_text()
    assert school.programme in row and "Lecturer" in row, row
    await _inspect(page, shots / "33-circles-overview.png")
    await page.close()


async def _arrived(maildir: Path, email: str) -> bool:
    return bool(read_messages(maildir, to=email))


async def by_keyboard(page: Page, plan: dict[str, Any], limit: int = 200) -> None:
    """Tab through the form from where focus is, answering as `plan` says, and send it with Enter.

    Every control is reached with Tab alone; radio buttons are chosen with Space and the arrow keys,
    checkboxes toggled with Space, text typed. Fails if the send button is never reached.
    """
    chosen: set[str] = set()
    for _ in range(limit):
        await page.keyboard.press("Tab")
        focused = await page.evaluate(
            "(() => { const e = document.activeElement;"
            " return {tag: e.tagName, type: e.type || '', name: e.name || '', value: e.value || '',"
            " checked: !!e.checked}; })()"
        )
        name, wanted = focused["name"], plan.get(focused["name"])
        if focused["tag"] == "BUTTON" and focused["type"] == "submit":
            await page.keyboard.press("Enter")
            return
        if wanted is None:
            continue
        if focused["type"] == "radio" and name not in chosen:
            await page.keyboard.press("Space")
            for _ in range(20):
                if await page.evaluate("document.activeElement.value") == wanted:
                    break
                await page.keyboard.press("ArrowDown")
            chosen.add(name)
        elif focused["type"] == "checkbox" and (focused["value"] in wanted) != focused["checked"]:
            await page.keyboard.press("Space")
        elif (focused["tag"] == "TEXTAREA" or focused["type"] == "text") and focused["value"] != wanted:
            await page.keyboard.press("ControlOrMeta+A")
            await page.keyboard.type(wanted)
    raise AssertionError(f"the send button was not reached with {limit} presses of Tab")


async def _inspect(page: Page, screenshot: Path) -> None:
    """Photograph the page and scan it: no serious or critical WCAG 2.2 AA violation."""
    await page.screenshot(path=str(screenshot), full_page=True)
    results = await Axe().run(page, options={"runOnly": {"type": "tag", "values": WCAG_AA}})
    violations = [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']]}"
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert not violations, f"{screenshot.name}: " + "; ".join(violations)


async def _eventually(check: Any, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        await asyncio.sleep(0.2)


async def _known(request: Any) -> bool:
    return (await request).is_success


async def _token(http: httpx.AsyncClient, urls: dict[str, str], client_id: str, secret: str) -> dict[str, str]:
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    response = await _ok(http.post(f"{urls['registration']}/oauth/token", data=form))
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def _ok(request: Any) -> httpx.Response:
    response = await request
    assert response.is_success, f"{response.request.method} {response.request.url}: {response.text}"
    return response
