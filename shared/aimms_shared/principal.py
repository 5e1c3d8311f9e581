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


@dataclass(frozen=True)
class Principal:
    """The caller: a portal of one institution, or a scheme administrator."""

    client_id: str
    institution_id: str | None
    scopes: frozenset[str] = field(default_factory=frozenset)

    @property
    def is_admin(self) -> bool:
        """Scheme coordinators see every institution."""
        return ADMIN in self.scopes

    def may_act_for(self, institution_id: str) -> bool:
        """Tenant isolation: a portal acts only for its own institution."""
        return self.is_admin or self.institution_id == institution_id
