"""The messages the mailer writes, read back as a mail client reads them."""

import email
import email.policy
from email.message import EmailMessage

import pytest

from aimms_notifications.mailer import Mailer, Outgoing, SmtpRejection
from tests.factories import notifications_settings

LONG_LINK = "https://aimms.example/notifications/opt-out/" + "t" * 150 + ".sig"


def mailer(sender: str = "AIMMS Méntoring <mentoring@aimms.test>") -> Mailer:
    return Mailer(notifications_settings(sender=sender), max_idle=1)


def build(**overrides: str | None) -> Outgoing:
    fields = {
        "to_email": "zoe@medic.ac.uk",
        "to_name": "Zoë Ōkubo-Smith, Jr",
        "subject": "Welcome to AIMMS Mentoring — your programme is open, and this subject runs long",
        "text": "Dear Zoë,\n\nwelcome.\n",
        "html": "<p>Dear Zoë,</p><p>welcome.</p>",
        "message_id": "<n-1@aimms.local>",
        "unsubscribe_url": LONG_LINK,
    }
    return mailer().build(**(fields | overrides))


def read(outgoing: Outgoing) -> EmailMessage:
    return email.message_from_bytes(outgoing.data, _class=EmailMessage, policy=email.policy.default)


def test_headers_and_both_bodies_read_back_as_written() -> None:
    outgoing = build()
    message = read(outgoing)
    assert (outgoing.sender, outgoing.recipient) == ("mentoring@aimms.test", "zoe@medic.ac.uk")
    assert message["From"].addresses[0].display_name == "AIMMS Méntoring"
    assert message["To"].addresses[0].display_name == "Zoë Ōkubo-Smith, Jr"
    assert message["To"].addresses[0].addr_spec == "zoe@medic.ac.uk"
    assert message["Subject"] == "Welcome to AIMMS Mentoring — your programme is open, and this subject runs long"
    assert message["Message-ID"] == "<n-1@aimms.local>"
    assert message["List-Unsubscribe"] == f"<{LONG_LINK}>"
    # Text in its canonical form, lines ending in CRLF (RFC 2045), whatever the template wrote.
    assert message.get_body(("plain",)).get_content() == "Dear Zoë,\r\n\r\nwelcome.\r\n"
    assert message.get_body(("html",)).get_content() == "<p>Dear Zoë,</p><p>welcome.</p>"
    assert message.get_content_type() == "multipart/alternative" and not message.defects


def test_the_wire_form_is_seven_bit_with_crlf_lines_that_smtp_accepts() -> None:
    data = build().data
    assert data.isascii()
    lines = data.split(b"\r\n")
    assert b"\n" not in b"".join(lines)
    assert max(len(line) for line in lines) <= 998  # RFC 5322's limit
    # An encoded word stays within RFC 2047's 75 characters: the long subject is folded across lines.
    assert all(len(word) <= 75 for line in lines for word in line.split() if word.startswith(b"=?"))


def test_a_line_break_in_a_name_or_subject_becomes_a_space() -> None:
    message = read(build(to_name="Ann\r\nBcc: someone@else.org", subject="Hello\nthere"))
    assert message["To"].addresses[0].display_name == "Ann Bcc: someone@else.org"
    assert message["Subject"] == "Hello there"
    assert message["Bcc"] is None


def test_an_international_domain_goes_as_punycode() -> None:
    outgoing = build(to_email="ann@médecine.example")
    assert outgoing.recipient == "ann@xn--mdecine-bya.example"
    assert read(outgoing)["To"].addresses[0].addr_spec == "ann@xn--mdecine-bya.example"


def test_a_mailbox_name_that_is_not_ascii_is_refused_for_good() -> None:
    with pytest.raises(SmtpRejection) as refused:
        build(to_email="zoë@medic.ac.uk")
    assert refused.value.code == 553 and "not ASCII" in refused.value.message
