"""When a message is ready to send, from what the read models know. No I/O.

Domain events name participants only by id: names and addresses come from the contacts read model
when the message is sent (`compose`), so a message to someone whose details have not arrived yet
waits for them (`Waiting`), and one to someone erased or withdrawn is cancelled (`Cancelled`).
The others a message names wait the same way: a partner erased meanwhile is called by her part,
never her name; a circle's member erased or withdrawn meanwhile is left out of it.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from aimms_notifications.domain.messages import (
    CONCERN_RAISED,
    DIGEST,
    MEMBERS,
    MENTEE_UNPLACED,
    WELCOME,
    Notification,
    is_optional,
    other,
)
from aimms_shared.contracts.registration import giver_of
from aimms_shared.durations import in_words


@dataclass(frozen=True)
class Contact:
    """How to reach a participant (the latest ParticipantContact)."""

    participant_id: str
    programme_id: str
    institution_id: str
    name: str
    email: str


@dataclass(frozen=True)
class Programme:
    """What messages say about a programme: its own wording, never another programme's.

    The defaults stand in for what documents recorded before a field existed (an older programme
    event, or a programme that never described itself).
    """

    programme_id: str
    name: str
    term: str
    trial_period: str
    mentor_more_senior: bool = True  # False: reverse mentoring, the mentee is the more senior one
    audience: str = ""  # whom it serves, e.g. "women from … working in academic medicine"
    description: str = ""  # the paragraph its welcome opens with
    kind: str = "pairs"  # or "circles": groups of peers with a facilitator, not pairs
    roles_offered: tuple[str, ...] = ("mentor", "mentee")

    @property
    def giver(self) -> str:
        """Who gives its support, as its emails call her: mentor, sponsor or ally."""
        return giver_of(self.roles_offered)


def introduction(programme: Programme) -> str:
    """The programme in its own words; without a description, a neutral sentence from its name and audience."""
    if programme.description.strip():
        return programme.description.strip()
    if programme.audience.strip():
        return f"{programme.name} is a mentoring programme for {programme.audience.strip()}."
    return f"{programme.name} is a mentoring programme."


def programme_context(programme: Programme) -> dict[str, Any]:
    """What every message may say about its programme (the templates choose the wording)."""
    return {
        "programme_name": programme.name,
        "programme_introduction": introduction(programme),
        "programme_audience": programme.audience,
        "programme_term": in_words(programme.term),
        "trial_period": in_words(programme.trial_period),
        "mentor_more_senior": programme.mentor_more_senior,
        "circles": programme.kind == "circles",
        "giver": programme.giver,
        "a_giver": f"{'an' if programme.giver[0] in 'aeiou' else 'a'} {programme.giver}",
    }


@dataclass(frozen=True)
class Known:
    """What the read models hold about the people, programme and institutions a message names."""

    contacts: dict[str, Contact]
    erased: frozenset[str]
    withdrawn: frozenset[str]
    programme: Programme | None
    institutions: dict[str, str]  # id -> name
    # The recipient refused optional messages (only looked up for an optional one).
    recipient_opted_out: bool = False


@dataclass(frozen=True)
class Ready:
    """Everything is known: send this."""

    to_email: str
    to_name: str
    institution_id: str | None
    context: dict[str, Any]


@dataclass(frozen=True)
class Waiting:
    """Details are missing (`participant:<id>`, `programme:<id>`, `institution:<id>`)."""

    missing: list[str]


@dataclass(frozen=True)
class Cancelled:
    """The message must not be sent."""

    reason: str


@dataclass(frozen=True)
class Skipped:
    """An optional message the recipient refused: recorded, not sent."""

    reason: str


OPTED_OUT = "recipient opted out of reminders and digests"


def compose(note: Notification, known: Known) -> Ready | Waiting | Cancelled | Skipped:
    """Decide whether a notification can be sent now, and with what context."""
    if note.recipient_id is not None and note.recipient_id in known.erased:
        return Cancelled("recipient erased")
    if note.recipient_id is not None and note.recipient_id in known.withdrawn:
        return Cancelled("recipient withdrew")
    if known.recipient_opted_out and is_optional(note.template):
        return Skipped(OPTED_OUT)
    if note.recipient_id is None:  # addressed directly: the event (or the digest) carried who and where
        assert note.recipient_email is not None and note.recipient_name is not None
        context = dict(note.context)
        if note.template == DIGEST:  # names as they stand now; an erased person's id only
            context["names"] = {pid: c.name for pid, c in known.contacts.items()}
        # Worded from the programme: waits for it (a welcome stored by address is one queued before welcomes
        # were addressed by the interest's contact).
        if note.template in (WELCOME, CONCERN_RAISED, MENTEE_UNPLACED):
            if known.programme is None:
                return Waiting([f"programme:{note.programme_id}"])
            context |= programme_context(known.programme)
        return Ready(note.recipient_email, note.recipient_name, note.institution_id, context)
    members = [m for m in note.context.get(MEMBERS, []) if _still_in(m["participant_id"], known)]
    named = [note.recipient_id, note.partner_id, *(m["participant_id"] for m in members)]
    missing = [f"participant:{pid}" for pid in named if _awaited(pid, known)]
    if known.programme is None:
        missing.append(f"programme:{note.programme_id}")
    people = [known.contacts[p] for p in named if p in known.contacts]
    missing += [f"institution:{c.institution_id}" for c in people if c.institution_id not in known.institutions]
    if missing:
        return Waiting(sorted(set(missing)))
    assert known.programme is not None
    recipient = known.contacts[note.recipient_id]
    context = (
        dict(note.context)
        | programme_context(known.programme)
        | {"name": recipient.name, "institution_name": known.institutions[recipient.institution_id]}
    )
    if note.partner_id is not None:
        partner = known.contacts.get(note.partner_id)  # None: she was erased meanwhile
        details = _reach(partner, known) if partner else _unnamed(note.context)
        context |= {f"partner_{key}": value for key, value in details.items()}
    if MEMBERS in note.context:
        context[MEMBERS] = [m | _reach(known.contacts[m["participant_id"]], known) for m in members]
    return Ready(recipient.email, recipient.name, recipient.institution_id, context)


def _reach(contact: Contact, known: Known) -> dict[str, str | None]:
    """How a message introduces someone it names: her name, address and institution."""
    return {
        "name": contact.name,
        "email": contact.email,
        "institution_name": known.institutions[contact.institution_id],
    }


def _unnamed(context: dict[str, Any]) -> dict[str, str | None]:
    """How a message names a partner whose details were erased: by her part, never her name, and no address."""
    if "side" in context:  # a pair's other side
        called = f"your {other(context['side'])}"
    else:  # the member who left a circle
        called = "your facilitator" if context.get("partner_role") == "facilitator" else "one member"
    return {"name": called, "email": None, "institution_name": None}


def _still_in(participant_id: str, known: Known) -> bool:
    """A circle's member erased or withdrawn since it formed is no longer introduced (nor waited for)."""
    return participant_id not in known.erased and participant_id not in known.withdrawn


def named_participants(note: Notification) -> list[str]:
    """Whose details a message needs: recipient, partner and the rest of her circle, or everyone a digest lists."""
    if note.template == DIGEST:
        pairs = {pid for row in note.context.get("awaiting", []) for pid in (row["mentee_id"], row["mentor_id"])}
        failed = {row["recipient_id"] for row in note.context.get("failed", []) if row["recipient_id"]}
        return sorted(pairs | failed)
    members = [m["participant_id"] for m in note.context.get(MEMBERS, [])]
    return [p for p in (note.recipient_id, note.partner_id, *members) if p is not None]


def _awaited(participant_id: str | None, known: Known) -> bool:
    return participant_id is not None and participant_id not in known.contacts and participant_id not in known.erased


def details_deadline(created_at: datetime, wait_seconds: float) -> datetime:
    """Until when a message waits for missing details before it is failed."""
    return created_at + timedelta(seconds=wait_seconds)
