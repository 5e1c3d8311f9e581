"""Who is calling, as plain data: the scopes a token may carry and the principal it names (no web imports)."""

from dataclasses import dataclass, field

# Scopes: what a token may do. Institution portals get the participant scopes for their own
# institution; scheme coordinators get `admin`.
ADMIN = "admin"
PARTICIPANTS_WRITE = "participants:write"
PARTICIPANTS_READ = "participants:read"
PROFILES_READ = "profiles:read"
PORTAL_SCOPES = (PARTICIPANTS_WRITE, PARTICIPANTS_READ, PROFILES_READ)
ALL_SCOPES = (ADMIN, *PORTAL_SCOPES)
# A participant's own token, from the link emailed to her: never a credential's scope, and only
# routes that say so (`require(..., participant=True)`) let her in, for herself alone.
SELF = "self"


@dataclass(frozen=True)
class Principal:
    """The caller: a portal of one institution, a scheme administrator, or a participant herself."""

    client_id: str
    institution_id: str | None
    scopes: frozenset[str] = field(default_factory=frozenset)
    participant_id: str | None = None  # set on a participant's own token

    @property
    def is_participant(self) -> bool:
        """A participant acting for herself, not a portal or a coordinator."""
        return self.participant_id is not None

    @property
    def is_admin(self) -> bool:
        """Scheme coordinators see every institution."""
        return ADMIN in self.scopes

    def may_act_for(self, institution_id: str, participant_id: str | None = None) -> bool:
        """Tenant isolation: a portal acts only for its own institution, a participant only for herself."""
        if self.is_participant:
            return participant_id is not None and participant_id == self.participant_id
        return self.is_admin or self.institution_id == institution_id
