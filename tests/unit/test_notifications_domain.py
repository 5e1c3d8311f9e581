"""What notifications sends for an event, and how delivery failures are judged."""

import pytest
from jinja2 import UndefinedError

from aimms_notifications.domain.compose import Known, Programme, Ready, Waiting, compose
from aimms_notifications.domain.delivery import judge_smtp_error
from aimms_notifications.domain.messages import Notification, notification_id, welcome
from aimms_notifications.templates import RenderedMessage, Templates
from aimms_shared.events import wrap
from tests.factories import interest_expressed

EVENT = interest_expressed()
AIMMS = Programme("aimms-mentoring", "AIMMS Mentoring", term="P6M", trial_period="P1M")


def known(programme: Programme | None = AIMMS) -> Known:
    """What the read models hold for a welcome: only the programme (it names no participant)."""
    return Known({}, frozenset(), frozenset(), programme, {})


def rendered(note: Notification) -> RenderedMessage:
    """The welcome as the delivery worker renders it, worded from its programme."""
    ready = compose(note, known())
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


def test_html_escapes_what_people_typed() -> None:
    message = rendered(welcome(EVENT.model_copy(update={"name": "<b>Amina</b>"}), wrap(EVENT, producer="registration")))
    assert "&lt;b&gt;Amina&lt;/b&gt;" in message.html
    assert "<b>Amina</b>" in message.text


def test_a_missing_template_variable_is_an_error_not_a_blank() -> None:
    with pytest.raises(UndefinedError):
        Templates().render("welcome", {"name": "Amina", "programme_name": "AIMMS Mentoring", "registration_url": None})


@pytest.mark.parametrize(
    ("code", "attempts", "kind"),
    [
        (550, 1, "failed"),  # mailbox does not exist: permanent
        (553, 1, "failed"),
        (421, 1, "retry"),  # service not available: temporary
        (451, 3, "retry"),
        (None, 1, "retry"),  # server unreachable
        (None, 12, "failed"),  # ...for too long
    ],
)
def test_permanent_smtp_errors_fail_at_once_and_temporary_ones_are_retried(code, attempts, kind) -> None:
    assert judge_smtp_error(code, "text", attempts, max_attempts=12).kind == kind
