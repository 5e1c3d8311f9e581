"""Every message renders from realistic events; who gets which; a missing variable is an error."""

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from jinja2 import UndefinedError

from aimms_notifications.domain import compose, digest, messages
from aimms_notifications.domain.compose import Contact, Known, Programme
from aimms_notifications.handlers import MESSAGES
from aimms_notifications.templates import RenderedMessage, Templates
from aimms_shared.contracts import matching as m
from aimms_shared.contracts.registration import ParticipantLinkIssued, ParticipantRegistered
from aimms_shared.contracts.surveys import SurveyInvitationIssued, SurveyReminderIssued
from aimms_shared.durations import in_words
from aimms_shared.events import Envelope, Event, wrap
from tests.factories import interest_expressed

NOW = datetime(2025, 3, 3, 9, 30, tzinfo=UTC)
MENTEE, MENTOR = "p-mentee", "p-mentor"
PAIR = {"pair_id": "pair-1", "programme_id": "aimms-mentoring", "mentee_id": MENTEE, "mentor_id": MENTOR}
LINKS = {
    side: m.ProposalLinks(
        accept=f"https://matching.example/answers/pair-1.{side}.accept.sig",
        decline=f"https://matching.example/answers/pair-1.{side}.decline.sig",
    )
    for side in ("mentee", "mentor")
}
KNOWN = Known(
    contacts={
        MENTEE: Contact(MENTEE, "aimms-mentoring", "demo-university", "Dr Amina Okafor", "amina@demo-university.ac.uk"),
        MENTOR: Contact(MENTOR, "aimms-mentoring", "northgate", "Prof Priya Raman", "priya@northgate.ac.uk"),
        # The rest of a circle (with the two above: Priya facilitates it).
        "p-ngozi": Contact("p-ngozi", "aimms-mentoring", "northgate", "Dr Ngozi Adeyemi", "ngozi@northgate.ac.uk"),
        "p-sara": Contact("p-sara", "aimms-mentoring", "riverside", "Dr Sara Haddad", "sara.haddad@riverside.ac.uk"),
        "p-mei": Contact("p-mei", "aimms-mentoring", "demo-university", "Dr Mei Lin", "mei.lin@demo-university.ac.uk"),
        # Someone who expressed interest, by her interest's contact (interest i-1).
        "interest:i-1": Contact(
            "interest:i-1", "aimms-mentoring", "demo-university", "Dr Amina Okafor", "amina@demo-university.ac.uk"
        ),
    },
    erased=frozenset(),
    withdrawn=frozenset(),
    programme=Programme("aimms-mentoring", "AIMMS Mentoring", term="P6M", trial_period="P1M"),
    institutions={
        "demo-university": "Demo University Medical School",
        "northgate": "Northgate School of Medicine",
        "riverside": "Riverside Medical School",
    },
)


def registered(**overrides: Any) -> ParticipantRegistered:
    fields = {
        "participant_id": MENTEE,
        "programme_id": "aimms-mentoring",
        "institution_id": "demo-university",
        "roles": ["mentee"],
        "job_title": "Clinical lecturer",
        "seniority": "Lecturer",
        "pathway": "clinical",
        "research_interests": ["global health", "maternal medicine"],
        "offers": None,
        "seeks": "advice on fellowship applications",
        "mentor_capacity": None,
        "profile_published": False,
        "background_matching": True,
        "registered_at": NOW,
    }
    return ParticipantRegistered(**(fields | overrides))


def proposed(**overrides: Any) -> m.MatchProposed:
    fields = PAIR | {
        "mentee_institution_id": "demo-university",
        "mentor_institution_id": "northgate",
        "round": "stable",
        "choice_rank": 1,
        "fallback_reason": None,
        "score": 2.4,
        "shared_interests": ["global health", "maternal medicine"],
        "seniority_gap": 2,
        "reply_by": NOW + timedelta(days=14),
        "mentee_links": LINKS["mentee"],
        "mentor_links": LINKS["mentor"],
    }
    return m.MatchProposed(**(fields | overrides))


# A circle of four peers from three institutions, facilitated by Priya; what each shares with the others.
PEERS = {
    MENTEE: ["global health", "maternal medicine"],
    "p-ngozi": ["global health"],
    "p-sara": ["maternal medicine"],
    "p-mei": ["global health"],
}
CIRCLE = {"circle_id": "circle-1", "programme_id": "aimms-mentoring"}


def circle_member(participant_id: str, role: m.CircleRole, shared_interests: list[str] | None = None) -> m.CircleMember:
    institution_id = KNOWN.contacts[participant_id].institution_id
    return m.CircleMember(
        participant_id=participant_id, institution_id=institution_id, role=role, shared_interests=shared_interests or []
    )


def circle_formed(*, facilitator: str | None = MENTOR, **overrides: Any) -> m.CircleFormed:
    """A CircleFormed as matching raises it: the peers, then the facilitator if one was free."""
    members = [circle_member(pid, "peer", interests) for pid, interests in PEERS.items()]
    if facilitator is not None:
        members.append(circle_member(facilitator, "facilitator"))
    fields = CIRCLE | {
        "members": members,
        "shared_interests": ["global health", "maternal medicine"],
        "stages": ["Lecturer", "Senior lecturer"],
        "formed_at": NOW,
        "follow_up_at": NOW + timedelta(days=182),
    }
    return m.CircleFormed(**(fields | overrides))


def member_left(participant_id: str = "p-sara", role: m.CircleRole = "peer") -> m.CircleMemberLeft:
    remaining = [pid for pid in [*PEERS, MENTOR] if pid != participant_id]
    return m.CircleMemberLeft(**CIRCLE, participant_id=participant_id, role=role, remaining=remaining)


TERM_END = NOW + timedelta(days=182)
SURVEY = {"invitation_id": "inv-1", "participant_id": MENTEE, "programme_id": "aimms-mentoring", "role": "mentee"}
SURVEY_LINK = "https://aimms.example/surveys/surveys/tok-123"
PAGE_LINK = "https://aimms.example/portal/me/links/secret-123"

EVENTS: list[Event] = [
    registered(),
    registered(participant_id=MENTOR, roles=["mentor"], mentor_capacity=2, profile_published=True, offers="grants"),
    registered(roles=["mentor", "mentee"], mentor_capacity=1, profile_published=False),
    proposed(),
    proposed(choice_rank=None, fallback_reason="choices-full", round="residual"),
    proposed(choice_rank=None, fallback_reason="no-choices", shared_interests=[]),
    m.MatchProposalReminder(
        **PAIR, awaiting=["mentor"], reply_by=NOW, mentee_links=LINKS["mentee"], mentor_links=LINKS["mentor"]
    ),
    m.MatchDeclined(**PAIR, side="mentor", reason="no time this term"),
    m.MatchDeclined(**PAIR, side="mentee"),
    m.MatchDeclined(**PAIR, side=None, expired=True, reason="no answer in time"),
    m.MentoringStarted(
        **PAIR,
        mentee_institution_id="demo-university",
        mentor_institution_id="northgate",
        started_at=NOW,
        trial_ends_at=NOW + timedelta(days=31),
        follow_up_at=NOW + timedelta(days=182),
        term_ends_at=TERM_END,
    ),
    m.SixMonthsElapsed(**PAIR, started_at=NOW, follow_up_at=TERM_END),
    m.MentoringTermEnded(**PAIR, term_ended_at=TERM_END, reply_by=TERM_END + timedelta(days=14)),
    m.MatchExtended(**PAIR, term_ends_at=TERM_END + timedelta(days=182)),
    *(
        m.MatchEnded(**PAIR, reason=reason, stage=stage, ended_by=by)
        for reason, stage, by in [
            ("completed", "mentoring", None),
            ("completed", "mentoring", "mentor"),
            ("trial", "mentoring", "mentee"),
            ("abandoned", "mentoring", "mentor"),
            ("withdrawn", "mentoring", "mentor"),
            ("withdrawn", "proposal", "mentee"),
        ]
    ),
    m.MatchEnded(**PAIR, reason="coordinators", stage="mentoring"),
    m.MatchPaused(**PAIR),
    m.MatchResumed(**PAIR),
    circle_formed(),
    circle_formed(facilitator=None, stages=["Lecturer", "Lecturer"]),
    member_left(),
    member_left(MENTOR, "facilitator"),
    ParticipantLinkIssued(
        participant_id=MENTEE,
        programme_id="aimms-mentoring",
        institution_id="demo-university",
        url=PAGE_LINK,
        expires_at=NOW + timedelta(hours=24),
    ),
]
SURVEY_EVENTS: list[Event] = [
    SurveyInvitationIssued(**SURVEY, wave="baseline", link=SURVEY_LINK, expires_at=NOW + timedelta(days=28)),
    SurveyReminderIssued(**SURVEY, wave="follow_up", link=SURVEY_LINK, expires_at=NOW, reminder=1),
]


OPT_OUT_URL = "https://aimms.example/notifications/opt-out/cGFydGljaXBhbnQ6cC1tZW50ZWU.sig"


def render(note: messages.Notification, known: Known = KNOWN, templates: Templates | None = None) -> RenderedMessage:
    """A notification rendered as the delivery worker renders it (an optional one with its opt-out link)."""
    ready = compose.compose(note, known)
    assert isinstance(ready, compose.Ready), ready
    context = ready.context | ({"opt_out_url": OPT_OUT_URL} if messages.is_optional(note.template) else {})
    return (templates or Templates()).render(
        note.template, context, programme_id=note.programme_id, institution_id=ready.institution_id
    )


def rendered_messages(
    event: Event, known: Known = KNOWN, templates: Templates | None = None
) -> dict[str, RenderedMessage]:
    """Each recipient's rendered message for an event, by recipient email."""
    envelope = wrap(event, producer="test")
    rendered = {}
    for note in MESSAGES[type(event)](event, envelope):
        ready = compose.compose(note, known)
        assert isinstance(ready, compose.Ready), ready
        rendered[ready.to_email] = render(note, known, templates)
    return rendered


COORDINATOR = "mentoring-office@demo-university.ac.uk"


CONCERN = m.ConcernRaised(
    concern_id="c-1",
    pair_id=PAIR["pair_id"],
    programme_id="aimms-mentoring",
    asks="pause",
    review_url="https://aimms.example/portal/coordinators/programmes/aimms-mentoring/concerns",
)


UNPLACED = m.MenteeUnplaced(
    mentee_id=MENTEE,
    programme_id="aimms-mentoring",
    institution_id="demo-university",
    waiting_url="https://aimms.example/portal/coordinators/programmes/aimms-mentoring/waiting",
)


def concern_notes() -> list[messages.Notification]:
    """The alerts to the programme's coordinators: a concern, and a mentee no place fits."""
    return messages.concern_raised(CONCERN, wrap(CONCERN, producer="test"), (COORDINATOR,)) + messages.mentee_unplaced(
        UNPLACED, wrap(UNPLACED, producer="test"), (COORDINATOR,)
    )


def digest_notes(**overrides: Any) -> list[messages.Notification]:
    """A realistic day's digest: one proposal half-answered, one overdue, one failed delivery."""
    proposals = [
        digest.OpenProposal(
            "pair-1", "aimms-mentoring", MENTEE, MENTOR, NOW - timedelta(days=2), NOW + timedelta(days=12), ("mentee",)
        ),
        digest.OpenProposal(
            "pair-7", "aimms-mentoring", "p-erased", MENTOR, NOW - timedelta(days=15), NOW - timedelta(hours=2)
        ),
    ]
    failures = [
        digest.FailedDelivery(
            "match_proposed", MENTOR, NOW - timedelta(hours=5), "rejected by SMTP server (550): <priya@northgate.ac.uk>"
        ),
        digest.FailedDelivery("welcome", None, NOW - timedelta(hours=1), "gave up after 12 attempts: timed out"),
    ]
    fields: dict[str, Any] = {
        "programme_name": "AIMMS Mentoring",
        "slot": NOW.replace(hour=7, minute=0),
        "built_at": NOW,
        "proposals": proposals,
        "failures": failures,
    }
    config = digest.DigestConfig("aimms-mentoring", (COORDINATOR,), True, 7)
    return digest.digest(config, **(fields | overrides))


AMINA, PRIYA = "amina@demo-university.ac.uk", "priya@northgate.ac.uk"


@pytest.mark.parametrize("event", EVENTS + SURVEY_EVENTS, ids=lambda e: f"{e.event_type}")
def test_every_message_renders_from_a_realistic_event_in_text_and_html(event: Event) -> None:
    for message in rendered_messages(event).values():
        assert message.subject and "\n" not in message.subject
        for body in (message.text, message.html):
            assert "AIMMS Mentoring team" in body
            assert "None" not in body and "{{" not in body and "{%" not in body
        assert message.html.lstrip().startswith("<!doctype html>")


def test_the_coordinators_digest_renders_in_text_and_html_with_names_deadlines_and_redacted_failures() -> None:
    [note] = digest_notes()
    message = render(note)

    assert message.subject == (
        "AIMMS Mentoring digest for Monday 3 March 2025: 2 proposals awaiting answers, 2 failed deliveries"
    )
    for body in (message.text, message.html):
        assert "Dr Amina Okafor" in body and "Prof Priya Raman" in body  # names from the contacts read model
        assert "p-erased" in body  # someone erased since: her id only
        assert "(overdue)" in body
        assert "priya@northgate.ac.uk" not in body and "[address]" in body
        assert OPT_OUT_URL in body
        assert "None" not in body and "{{" not in body
    assert "waiting for: mentor\n" in message.text  # the mentee answered already
    assert message.text.index("pair-7") < message.text.index("pair-1")  # earliest deadline first
    assert message.html.lstrip().startswith("<!doctype html>")


def test_an_empty_digest_says_so() -> None:
    [note] = digest_notes(proposals=[], failures=[])
    message = render(note)
    assert "0 proposals awaiting answers, 0 failed deliveries" in message.subject
    assert "every proposal has been answered" in message.text and "every proposal has been answered" in message.html


def test_every_optional_message_carries_its_opt_out_link_and_no_required_one_does() -> None:
    notes = [n for e in EVENTS + SURVEY_EVENTS for n in MESSAGES[type(e)](e, wrap(e, producer="test"))]
    notes += digest_notes() + concern_notes()
    assert {n.template for n in notes} == set(messages.TEMPLATES) - {messages.WELCOME}
    for note in notes:
        message = render(note)
        for body in (message.text, message.html):
            assert (OPT_OUT_URL in body) == messages.is_optional(note.template), note.template


def test_every_template_has_a_subject_text_and_html() -> None:
    folder = Path(messages.__file__).parents[1] / "templates"
    for name in messages.TEMPLATES:
        for suffix in (".subject.txt", ".txt", ".html"):
            assert (folder / f"{name}{suffix}").is_file(), f"{name}{suffix}"


def test_the_registration_confirmation_says_what_happens_next_for_her_roles() -> None:
    mentee = rendered_messages(registered())[AMINA]
    mentor = rendered_messages(
        registered(participant_id=MENTOR, roles=["mentor"], mentor_capacity=2, profile_published=True)
    )
    both = rendered_messages(registered(roles=["mentor", "mentee"], mentor_capacity=1, profile_published=True))[AMINA]

    assert mentee.subject == "Your registration with AIMMS Mentoring is complete"
    assert "up\n  to three mentors" in mentee.text and "As a mentor" not in mentee.text
    assert "global health and maternal medicine" in mentee.text
    assert "visible to eligible mentees" in mentor[PRIYA].text and "up to 2 mentees" in mentor[PRIYA].text
    assert "As a mentee" not in mentor[PRIYA].text
    assert "As a mentee" in both.text and "As a mentor" in both.text and "6 months" in both.text


AIMMS_LIKE = Programme(
    "aimms-mentoring",
    "AIMMS Mentoring",
    term="P6M",
    trial_period="P1M",
    audience="women from Black, Asian and other ethnic minority backgrounds working in academic medicine",
    description="AIMMS Mentoring pairs women from Black, Asian and other ethnic minority backgrounds working in "
    "academic medicine with mentors at other medical schools across the UK.",
)
REVERSE = Programme(
    "reverse-mentoring",
    "Reverse Mentoring",
    term="P4M",
    trial_period="P1M",
    mentor_more_senior=False,
    audience="students from backgrounds under-represented in medicine and the senior staff they mentor",
    description="Reverse Mentoring pairs students from backgrounds under-represented in medicine, as mentors, "
    "with senior staff of the medical school, who learn from their experience and ideas for change.",
)
AIMMS_TEXT = ("AIMMS", "ethnic minority", "six months", "6 months", "more senior", "other medical schools")


def programme_messages(programme: Programme) -> list[RenderedMessage]:
    """The welcome and the registration emails (as mentee, mentor and both) of one programme."""
    known = Known(KNOWN.contacts, frozenset(), frozenset(), programme, KNOWN.institutions)
    ids = {"programme_id": programme.programme_id}
    portal = f"https://portal.demo-university.ac.uk/{programme.programme_id}"
    interest = interest_expressed(**ids, programme_name=programme.name, registration_url=portal)
    [welcome] = MESSAGES[type(interest)](interest, wrap(interest, producer="test"))
    registrations = [
        registered(**ids),
        registered(**ids, participant_id=MENTOR, roles=["mentor"], mentor_capacity=2, profile_published=True),
        registered(**ids, roles=["mentor", "mentee"], mentor_capacity=1, profile_published=True),
    ]
    return [render(welcome, known), *(m for event in registrations for m in rendered_messages(event, known).values())]


def test_welcome_and_registration_emails_speak_of_their_own_programme_never_of_aimms() -> None:
    for message in programme_messages(AIMMS_LIKE):
        for body in (message.text, message.html):
            assert "AIMMS Mentoring team" in body and "6 months" in body
            assert "4 months" not in body and "Reverse Mentoring" not in body

    reverse = programme_messages(REVERSE)
    for message in reverse:
        assert "Reverse Mentoring" in message.subject
        for body in (message.text, message.html):
            assert "Reverse Mentoring team" in body and "4 months" in body
            found = [phrase for phrase in AIMMS_TEXT if phrase in body]
            assert not found, found

    welcome, as_mentee = reverse[0], reverse[1]
    for body in (welcome.text, welcome.html):
        assert REVERSE.description in body  # the welcome opens with the programme's own paragraph
    for body in (as_mentee.text, as_mentee.html):  # her mentor is a student: the fallback looks less senior
        assert "a mentor at an earlier stage of their career than you" in body
    [aimms_welcome, aimms_mentee, *_] = programme_messages(AIMMS_LIKE)
    assert AIMMS_LIKE.description in aimms_welcome.text and AIMMS_LIKE.description in aimms_welcome.html
    assert "a more senior\n  colleague" in aimms_mentee.text


def test_a_programme_without_a_description_is_introduced_by_its_name_and_audience_only() -> None:
    undescribed = dataclasses.replace(REVERSE, description="")
    [welcome, *_] = programme_messages(undescribed)
    sentence = f"Reverse Mentoring is a mentoring programme for {REVERSE.audience}."
    assert sentence in welcome.text and sentence in welcome.html
    assert compose.introduction(dataclasses.replace(undescribed, audience="")) == (
        "Reverse Mentoring is a mentoring programme."
    )


def test_a_fallback_proposal_in_reverse_mentoring_looks_for_a_less_senior_mentor() -> None:
    known = Known(KNOWN.contacts, frozenset(), frozenset(), REVERSE, KNOWN.institutions)
    event = proposed(programme_id="reverse-mentoring", choice_rank=None, fallback_reason="choices-full")
    mentee = rendered_messages(event, known)[AMINA]
    for body in (mentee.text, mentee.html):
        assert "another mentor at an earlier stage of their career than you" in body and "more senior" not in body
    assert (
        "another more senior colleague"
        in rendered_messages(proposed(choice_rank=None, fallback_reason="choices-full"))[AMINA].text
    )


def test_a_proposal_says_when_shared_background_and_career_pathway_counted() -> None:
    both = proposed(choice_rank=None, fallback_reason="no-choices", components={"background": 1.0, "pathway": 1.0})
    neither = proposed(choice_rank=None, fallback_reason="no-choices", components={"background": 0.0})

    for message in rendered_messages(both).values():
        for body in (message.text, message.html):
            assert "You both asked to be matched with someone of a similar background" in body
            assert "same career pathway" in body
    for message in rendered_messages(neither).values():
        assert "similar background" not in message.text and "career pathway" not in message.text


def test_a_proposal_goes_to_each_side_with_her_own_links_the_reason_and_the_deadline() -> None:
    sent = rendered_messages(proposed(choice_rank=2))
    mentee, mentor = sent[AMINA], sent[PRIYA]

    assert mentee.subject == "We propose Prof Priya Raman as your mentor: please answer by Monday 17 March 2025"
    assert mentor.subject == "We propose you as mentor to Dr Amina Okafor: please answer by Monday 17 March 2025"
    assert "Northgate School of Medicine" in mentee.text and "Demo University Medical School" in mentor.text
    assert "your second choice" in mentee.text and "named you as her second choice" in mentor.text
    assert "global health and maternal medicine" in mentee.html
    assert "09:30 on Monday 17 March 2025 (UK time)" in mentee.text
    for message, own, other in ((mentee, "mentee", "mentor"), (mentor, "mentor", "mentee")):
        for body in (message.text, message.html):
            assert LINKS[own].accept in body and LINKS[own].decline in body
            assert LINKS[other].accept not in body and LINKS[other].decline not in body


def test_a_fallback_proposal_says_why_her_choices_were_not_used() -> None:
    full = rendered_messages(proposed(choice_rank=None, fallback_reason="choices-full"))
    none = rendered_messages(proposed(choice_rank=None, fallback_reason="no-choices"))
    assert "no places left" in full[AMINA].text
    assert "did not name any mentors" in none[AMINA].text
    assert "relative seniority" in full[PRIYA].text and "no places" not in full[PRIYA].text


def test_a_reminder_goes_only_to_the_side_that_has_not_answered() -> None:
    event = m.MatchProposalReminder(
        **PAIR, awaiting=["mentor"], reply_by=NOW, mentee_links=LINKS["mentee"], mentor_links=LINKS["mentor"]
    )
    assert list(rendered_messages(event)) == [PRIYA]
    assert LINKS["mentor"].accept in rendered_messages(event)[PRIYA].text


def test_a_decline_is_told_to_the_other_side_and_the_mentee_hears_a_new_proposal_is_coming() -> None:
    by_mentor = rendered_messages(m.MatchDeclined(**PAIR, side="mentor", reason="no time"))
    by_mentee = rendered_messages(m.MatchDeclined(**PAIR, side="mentee"))
    lapsed = rendered_messages(m.MatchDeclined(**PAIR, side=None, expired=True))

    assert list(by_mentor) == [AMINA] and list(by_mentee) == [PRIYA] and set(lapsed) == {AMINA, PRIYA}
    assert "A new proposal is on its way" in by_mentor[AMINA].text
    assert "no time" not in by_mentor[AMINA].text  # the decliner's reason stays with the coordinators
    assert "Your place stays open" in by_mentee[PRIYA].text
    assert "lapsed" in lapsed[AMINA].text


def test_the_introduction_names_the_partner_the_trial_and_the_agreement_checklist() -> None:
    started = rendered_messages(EVENTS[10])
    mentee, mentor = started[AMINA], started[PRIYA]
    assert mentee.subject == "Introducing your mentor: Prof Priya Raman"
    assert mentor.subject == "Introducing your mentee: Dr Amina Okafor"
    assert PRIYA in mentee.text and AMINA in mentor.text
    for body in (mentee.text, mentee.html):
        assert "first meeting is a trial" in body.lower()
        assert "Thursday 3 April 2025" in body  # end of the trial
        assert "confidentiality" in body
    assert "[ ] how often you will meet" in mentee.text


def test_the_term_end_asks_both_to_extend_or_conclude_by_the_deadline() -> None:
    sent = rendered_messages(
        m.MentoringTermEnded(**PAIR, term_ended_at=TERM_END, reply_by=TERM_END + timedelta(days=14))
    )
    assert set(sent) == {AMINA, PRIYA}
    assert "another 6 months" in sent[AMINA].text and "(UK time)" in sent[AMINA].text


def test_an_ended_match_is_confirmed_to_both_in_words_that_fit_who_ended_it() -> None:
    trial = rendered_messages(m.MatchEnded(**PAIR, reason="trial", stage="mentoring", ended_by="mentee"))
    assert "As you asked" in trial[AMINA].text
    assert "Dr Amina Okafor has decided to end" in trial[PRIYA].text
    withdrawn = rendered_messages(m.MatchEnded(**PAIR, reason="withdrawn", stage="proposal", ended_by="mentor"))
    assert "Prof Priya Raman has left" in withdrawn[AMINA].text and "another mentor" in withdrawn[AMINA].text


def test_html_escapes_names_people_typed() -> None:
    amina = KNOWN.contacts[MENTEE]
    known = Known(
        {
            **KNOWN.contacts,
            MENTEE: Contact(MENTEE, amina.programme_id, amina.institution_id, "<b>Amina</b>", amina.email),
        },
        KNOWN.erased,
        KNOWN.withdrawn,
        KNOWN.programme,
        KNOWN.institutions,
    )
    message = rendered_messages(proposed(), known)[PRIYA]
    assert "&lt;b&gt;Amina&lt;/b&gt;" in message.html and "<b>Amina</b>" not in message.html


@pytest.mark.parametrize("template", [t for t in messages.TEMPLATES if t != messages.WELCOME])
def test_a_missing_template_variable_is_an_error_not_a_blank(template: str) -> None:
    notes = [n for e in EVENTS + SURVEY_EVENTS for n in MESSAGES[type(e)](e, wrap(e, producer="test"))]
    note = next(n for n in notes + digest_notes() + concern_notes() if n.template == template)
    ready = compose.compose(note, KNOWN)
    assert isinstance(ready, compose.Ready)
    context = ready.context | ({"opt_out_url": OPT_OUT_URL} if messages.is_optional(template) else {})
    Templates().render(template, context)  # complete, it renders
    for missing in ("name", *(["opt_out_url"] if messages.is_optional(template) else [])):
        with pytest.raises(UndefinedError):
            Templates().render(template, {k: v for k, v in context.items() if k != missing})


def test_a_programme_or_an_institution_overrides_any_part_from_files(tmp_path: Path) -> None:
    northgate = tmp_path / "institutions" / "northgate"
    northgate.mkdir(parents=True)
    (northgate / "_signature.txt").write_text("Yours,\nThe Northgate mentoring office\n")
    reverse = tmp_path / "programmes" / "aimms-mentoring"
    reverse.mkdir(parents=True)
    (reverse / "match_extended.subject.txt").write_text("Another term with {{ partner_name }}\n")
    templates = Templates(str(tmp_path))

    sent = rendered_messages(m.MatchExtended(**PAIR, term_ends_at=TERM_END), templates=templates)

    assert sent[PRIYA].text.rstrip().endswith("The Northgate mentoring office")  # her institution's signature
    assert "AIMMS Mentoring team" in sent[AMINA].text  # the default, elsewhere
    assert "AIMMS Mentoring team" in sent[PRIYA].html  # only the text part was overridden
    assert sent[AMINA].subject == "Another term with Prof Priya Raman"


# -- who is addressed, and when a message must wait or not be sent


def test_a_message_for_someone_whose_details_have_not_arrived_waits_for_them() -> None:
    [note, _] = messages.match_proposed(proposed(), wrap(proposed(), producer="test"))
    known = Known({}, frozenset(), frozenset(), None, {})
    assert compose.compose(note, known) == compose.Waiting(
        ["participant:p-mentee", "participant:p-mentor", "programme:aimms-mentoring"]
    )


def test_a_message_to_someone_erased_or_withdrawn_is_cancelled_and_an_erased_partner_goes_unnamed() -> None:
    ended = next(e for e in reversed(EVENTS) if isinstance(e, m.MatchEnded))
    [to_mentee, to_mentor] = messages.match_ended(ended, wrap(ended, producer="test"))
    without_mentee = Known(
        {MENTOR: KNOWN.contacts[MENTOR]}, frozenset({MENTEE}), frozenset(), KNOWN.programme, KNOWN.institutions
    )
    assert compose.compose(to_mentee, without_mentee) == compose.Cancelled("recipient erased")
    ready = compose.compose(to_mentor, without_mentee)
    assert isinstance(ready, compose.Ready) and ready.context["partner_name"] == "your mentee"
    withdrawn = Known(KNOWN.contacts, frozenset(), frozenset({MENTOR}), KNOWN.programme, KNOWN.institutions)
    assert compose.compose(to_mentor, withdrawn) == compose.Cancelled("recipient withdrew")


def test_each_recipient_of_an_event_gets_her_own_stable_notification_id() -> None:
    envelope: Envelope = wrap(proposed(), producer="test")
    first, again = messages.match_proposed(proposed(), envelope), messages.match_proposed(proposed(), envelope)
    assert [n.notification_id for n in first] == [n.notification_id for n in again]
    assert len({n.notification_id for n in first}) == 2


@pytest.mark.parametrize(
    ("iso", "words"), [("P6M", "6 months"), ("P1M", "1 month"), ("P14D", "2 weeks"), ("P1Y6M", "1 year and 6 months")]
)
def test_programme_durations_read_as_words(iso: str, words: str) -> None:
    assert in_words(iso) == words


def test_a_survey_invitation_carries_her_link_and_says_her_answers_are_anonymous() -> None:
    [invitation] = rendered_messages(SURVEY_EVENTS[0]).values()
    [reminded] = rendered_messages(SURVEY_EVENTS[1]).values()

    assert invitation.subject == "A short questionnaire as your mentoring begins (AIMMS Mentoring)"
    assert SURVEY_LINK in invitation.text and f'href="{SURVEY_LINK}"' in invitation.html
    assert "anonymous" in invitation.text and "31 March 2025" in invitation.text
    assert reminded.subject.startswith("Reminder: Your six-month questionnaire")
    assert "friendly reminder" in reminded.text


def test_the_link_to_her_page_goes_to_her_alone_and_says_it_works_once() -> None:
    [sent] = rendered_messages(EVENTS[-1]).values()

    assert sent.subject == "Your link to AIMMS Mentoring"
    assert PAGE_LINK in sent.text and f'href="{PAGE_LINK}"' in sent.html
    assert "works once" in sent.text and "did not ask" in sent.text


def test_a_pair_proposed_by_hand_gives_both_sides_the_coordinators_reason() -> None:
    event = proposed(round="manual", choice_rank=None, fallback_reason=None, note="You both run stroke trials")
    for message in rendered_messages(event).values():
        for body in (message.text, message.html):
            assert "The scheme's coordinators chose this match: You both run stroke trials" in body
            assert "We looked for" not in body and "We suggest you" not in body


def test_a_mentee_no_place_fits_is_announced_to_the_coordinators_with_the_waiting_list() -> None:
    [_, unplaced] = concern_notes()
    message = render(unplaced)
    assert message.subject == "A mentee in AIMMS Mentoring is waiting: no mentor with a place free fits her"
    assert UNPLACED.waiting_url in message.text and f'href="{UNPLACED.waiting_url}"' in message.html
    assert AMINA not in message.text


def test_a_concern_alerts_the_coordinators_without_saying_who_or_what() -> None:
    [alert, _] = concern_notes()
    ready = compose.compose(alert, KNOWN)
    assert isinstance(ready, compose.Ready) and ready.to_email == COORDINATOR
    message = render(alert)
    assert message.subject == "Safeguarding concern raised in AIMMS Mentoring"
    for body in (message.text, message.html):
        assert CONCERN.review_url in body and "asks that it be paused" in body and "has not been told" in body
        assert AMINA not in body and PRIYA not in body


def test_a_pause_a_resumption_and_a_closing_by_coordinators_tell_both_sides_nothing_of_why() -> None:
    paused = rendered_messages(m.MatchPaused(**PAIR))
    closed = rendered_messages(m.MatchEnded(**PAIR, reason="coordinators", stage="mentoring"))
    resumed = rendered_messages(m.MatchResumed(**PAIR))

    assert set(paused) == set(closed) == set(resumed) == {AMINA, PRIYA}
    assert "Nothing is needed from you while it is paused" in paused[AMINA].text and "concern" not in paused[AMINA].text
    assert (
        closed[PRIYA].subject.endswith("has been closed")
        and "coordinators have closed your mentoring" in closed[PRIYA].text
    )
    assert "concern" not in closed[PRIYA].text and "continues where it was" in resumed[AMINA].text


def test_a_circles_programmes_welcome_and_registration_speak_of_circles_peers_and_facilitators() -> None:
    circles = Programme("peer-circles", "Peer Circles", term="P12M", trial_period="P1M", kind="circles")
    known = Known(KNOWN.contacts, frozenset(), frozenset(), circles, KNOWN.institutions)
    ids = {"programme_id": "peer-circles"}
    interest = interest_expressed(**ids, programme_name="Peer Circles")
    [welcome] = MESSAGES[type(interest)](interest, wrap(interest, producer="test"))
    peer = rendered_messages(registered(**ids, roles=["peer"]), known)[KNOWN.contacts[MENTEE].email]
    facilitator = rendered_messages(registered(**ids, participant_id=MENTOR, roles=["facilitator"]), known)
    for message in (render(welcome, known), peer, facilitator[KNOWN.contacts[MENTOR].email]):
        for body in (message.text, message.html):
            assert "circles of four to eight peers" in body
            assert not [w for w in ("top three", "mentee", "mentor ", "partnership") if w in body], body
    assert "as a peer" in peer.text and "others in your circle" in peer.text
    assert "as a facilitator" in facilitator[KNOWN.contacts[MENTOR].email].text
