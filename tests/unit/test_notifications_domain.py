"""What notifications sends for an event, and how delivery failures are judged."""

from datetime import UTC, datetime, timedelta

import pytest
from jinja2 import UndefinedError

from aimms_notifications.domain import delivery
from aimms_notifications.domain.compose import Contact, Known, Programme, Ready, Waiting, compose
from aimms_notifications.domain.messages import Notification, notification_id, welcome
from aimms_notifications.templates import RenderedMessage, Templates
from aimms_shared.events import wrap
from tests.factories import interest_expressed

EVENT = interest_expressed()
AIMMS = Programme("aimms-mentoring", "AIMMS Mentoring", term="P6M", trial_period="P1M")
HER = "interest:i-1"  # her contact, as registration announces it beside the event
INSTITUTIONS = {"demo-university": "Demo University Medical School", "scheme": "the scheme's own page"}


def contact(name: str = "Dr Amina Okafor", institution_id: str = "demo-university") -> Contact:
    return Contact(HER, "aimms-mentoring", institution_id, name, "amina@demo-university.ac.uk")


def known(programme: Programme | None = AIMMS, her: Contact | None = None) -> Known:
    """What the read models hold for a welcome: her contact, the programme and the institutions."""
    contacts = {HER: her or contact()}
    return Known(contacts, frozenset(), frozenset(), programme, INSTITUTIONS)


def rendered(note: Notification, her: Contact | None = None) -> RenderedMessage:
    """The welcome as the delivery worker renders it, worded from its programme."""
    ready = compose(note, known(her=her))
    assert isinstance(ready, Ready), ready
    return Templates().render(note.template, ready.context, programme_id=note.programme_id)


def test_the_same_event_recipient_and_template_always_give_the_same_notification() -> None:
    assert notification_id("e-1", "A@x.org", "welcome") == notification_id("e-1", "a@x.org", "welcome")
    assert notification_id("e-1", "a@x.org", "welcome") != notification_id("e-2", "a@x.org", "welcome")
    assert notification_id("e-1", "a@x.org", "welcome") != notification_id("e-1", "a@x.org", "reminder")


def test_a_redelivered_event_maps_to_the_notification_already_recorded() -> None:
    envelope = wrap(EVENT, producer="registration")
    assert welcome(EVENT, envelope).notification_id == welcome(EVENT, envelope).notification_id


def test_the_welcome_waits_for_its_programme_like_every_other_message() -> None:
    note = welcome(EVENT, wrap(EVENT, producer="registration"))
    assert compose(note, known(None)) == Waiting(["programme:aimms-mentoring"])
    assert compose(note, Known({}, frozenset(), frozenset(), AIMMS, INSTITUTIONS)) == Waiting([f"participant:{HER}"])
    assert isinstance(compose(note, known()), Ready)


def test_the_welcome_email_explains_the_scheme_matching_and_privacy() -> None:
    message = rendered(welcome(EVENT, wrap(EVENT, producer="registration")))

    assert message.subject == "Welcome to AIMMS Mentoring"
    for body in (message.text, message.html):
        assert "Dr Amina Okafor" in body
        assert "Demo University Medical School" in body
        assert "top three" in body
        assert "first meeting is a trial" in body
        assert "privacy notice" in body.lower()
        assert "withdraw" in body
        assert "https://portal.demo-university.ac.uk/aimms" in body


def test_a_welcome_from_the_schemes_own_page_says_the_coordinators_will_register_her() -> None:
    event = EVENT.model_copy(
        update={"institution_id": "scheme", "institution_name": "the scheme's own page", "registration_url": None}
    )
    message = rendered(welcome(event, wrap(event, producer="registration")), contact(institution_id="scheme"))
    for body in (message.text, message.html):
        assert "which you expressed through the scheme" in body
        assert "coordinators will write to you" in body and "staff portal" not in body


def test_html_escapes_what_people_typed() -> None:
    message = rendered(welcome(EVENT, wrap(EVENT, producer="registration")), contact(name="<b>Amina</b>"))
    assert "&lt;b&gt;Amina&lt;/b&gt;" in message.html
    assert "<b>Amina</b>" in message.text


def test_a_missing_template_variable_is_an_error_not_a_blank() -> None:
    with pytest.raises(UndefinedError):
        Templates().render("welcome", {"name": "Amina", "programme_name": "AIMMS Mentoring", "registration_url": None})


PATIENCE = delivery.Patience(retry_base_seconds=2, retry_cap_seconds=600, recheck_cap_seconds=60, max_attempts=12)
T0 = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)


def pending(**changes) -> delivery.Delivery:
    return delivery.Delivery("n-1", "<m-1@aimms>", details_deadline=T0 + timedelta(hours=1), **changes)


@pytest.mark.parametrize(
    ("code", "attempts_before", "retried"),
    [
        (550, 0, False),  # mailbox does not exist: permanent
        (553, 0, False),
        (421, 0, True),  # service not available: temporary
        (451, 2, True),
        (None, 0, True),  # server unreachable
        (None, 11, False),  # ...for too long: the twelfth attempt was the last
    ],
)
def test_permanent_smtp_errors_fail_at_once_and_temporary_ones_are_retried(code, attempts_before, retried) -> None:
    decision = delivery.smtp_refused(pending(attempts=attempts_before), code, "text", T0, PATIENCE)
    assert isinstance(decision, delivery.TryAgain) is retried


def test_a_temporary_refusal_is_retried_with_doubling_waits_up_to_the_cap() -> None:
    delays = [delivery.smtp_refused(pending(attempts=n), 421, "busy", T0, PATIENCE).delay for n in range(0, 11)]
    first = delivery.smtp_refused(pending(), 421, "busy", T0, PATIENCE)

    assert delays[:4] == [2, 4, 8, 16] and max(delays) == 600
    assert (first.due, first.attempt, first.reason) == (T0 + timedelta(seconds=2), 1, "busy")


def test_missing_details_are_looked_for_again_never_past_the_deadline_then_given_up_naming_them() -> None:
    early = delivery.details_missing(pending(detail_checks=2), ["participant:p-2"], T0, PATIENCE)
    near_deadline = delivery.details_missing(
        pending(detail_checks=9), ["participant:p-2"], T0 + timedelta(minutes=59, seconds=30), PATIENCE
    )
    late = delivery.details_missing(pending(), ["participant:p-2"], T0 + timedelta(hours=1), PATIENCE)

    assert isinstance(early, delivery.LookAgain) and early.delay == 8 and early.missing == ("participant:p-2",)
    assert isinstance(near_deadline, delivery.LookAgain) and near_deadline.due == T0 + timedelta(hours=1)
    assert isinstance(late, delivery.GiveUp) and "participant:p-2" in late.reason
