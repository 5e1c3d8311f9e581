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
class Invited:
    email: str
    link: str  # the portal's page, as the invitation email gives it


@pytest.fixture(scope="module")
async def invited() -> Invited:
    """A new participant's baseline invitation, from the email the platform sent her."""
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
        school = f"pages-{run}"
        domain = f"{school}.ac.uk"
        institution = {
            "institution_id": school,
            "name": "Pages School",
            "email_domains": [domain],
            "contact_email": f"office@{domain}",
        }
        await _ok(http.post(f"{urls['registration']}/institutions", json=institution, headers=admin))
        scopes = ["participants:write", "participants:read"]
        credential = {"name": f"{school} portal", "institution_id": school, "scopes": scopes}
        secret = (await _ok(http.post(f"{urls['registration']}/credentials", json=credential, headers=admin))).json()
        portal = await _token(http, urls, secret["client_id"], secret["client_secret"])
        programme = {
            "programme_id": school,
            "name": "AIMMS Mentoring (pages)",
            "roles_offered": ["mentor", "mentee"],
            "seniority_scale": ["Lecturer", "Professor"],
        }
        await _ok(http.post(f"{urls['registration']}/programmes", json=programme, headers=admin))
        surveys = urls["surveys"]
        policy = {"baseline_on": "registration", "follow_up": False, "valid_for": "P1D", "max_reminders": 0}
        await _ok(http.put(f"{surveys}/programmes/{school}/survey-policy", json=policy, headers=admin))
        definition = (await http.get(f"{surveys}/questionnaires/aimms-mentoring/baseline", headers=admin)).json()
        draft = {k: v for k, v in definition.items() if k not in ("programme_id", "wave", "version")}
        await _ok(http.post(f"{surveys}/questionnaires/{school}/baseline", json=draft, headers=admin))
        email = f"amina.{run}@{domain}"
        person = {
            "name": "Dr Amina Okafor",
            "email": email,
            "programme_id": school,
            "role": "mentee",
            "job_title": "Clinical Lecturer",
            "seniority": "Lecturer",
            "pathway": "clinical",
            "research_interests": ["global health"],
            "seeks": "Advice on a fellowship application",
            "consents": {"privacy_notice": "1", "code_of_conduct": "1", "confidentiality": "1", "evaluation": "1"},
        }
        await _ok(http.post(f"{urls['registration']}/participants", json=person, headers=portal))

    pattern = re.compile(re.escape(urls["portal"]) + r"/surveys/\S+")
    maildir = Path(stack.endpoints()["SMTP_SINK_DIR"])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for message in read_messages(maildir, to=email):
            if found := pattern.findall(message.get_body(("plain",)).get_content()):
                return Invited(email, found[0])
        await asyncio.sleep(0.3)
    raise AssertionError(f"no questionnaire invitation reached {email} within 60 s")


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


async def _token(http: httpx.AsyncClient, urls: dict[str, str], client_id: str, secret: str) -> dict[str, str]:
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    response = await _ok(http.post(f"{urls['registration']}/oauth/token", data=form))
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def _ok(request: Any) -> httpx.Response:
    response = await request
    assert response.is_success, f"{response.request.method} {response.request.url}: {response.text}"
    return response
