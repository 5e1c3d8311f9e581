"""Institutions: the medical schools whose portals connect to the platform."""

import re
from dataclasses import dataclass, replace

from aimms_shared.contracts.registration import (
    SCHEME_TENANCY,
    InstitutionOnboarded,
    InstitutionReactivated,
    InstitutionSuspended,
)
from aimms_shared.errors import RuleBroken, StateConflict

# The scheme's own tenancy: people from universities not onboarded, in programmes open to them. It
# has no portal and no email domains: any address may join through it.
SCHEME = SCHEME_TENANCY
SCHEME_NAME = "the scheme's own page"

DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


@dataclass(frozen=True)
class Institution:
    """A medical school onboarded to the platform."""

    institution_id: str
    name: str
    email_domains: tuple[str, ...]
    contact_email: str
    registration_url: str | None = None
    active: bool = True
    version: int = 1


def onboard(
    institution_id: str, name: str, email_domains: list[str], contact_email: str, registration_url: str | None
) -> tuple[Institution, InstitutionOnboarded]:
    """A new institution, active at once."""
    domains = tuple(dict.fromkeys(d.strip().lower().lstrip("@") for d in email_domains))
    if not domains:
        raise RuleBroken("email_domains", "required", "an institution needs at least one email domain")
    for domain in domains:
        if not DOMAIN.match(domain):
            raise RuleBroken("email_domains", "domain-name", f"'{domain}' is not a domain name")
    institution = Institution(institution_id, name.strip(), domains, contact_email, registration_url)
    return institution, InstitutionOnboarded(
        institution_id=institution_id, name=institution.name, email_domains=list(domains)
    )


def scheme_tenancy() -> tuple[Institution, InstitutionOnboarded]:
    """The scheme's own tenancy, created once at start-up."""
    institution = Institution(SCHEME, SCHEME_NAME, (), "")
    return institution, InstitutionOnboarded(institution_id=SCHEME, name=SCHEME_NAME, email_domains=[])


def member_for_address(email: str, institutions: list[Institution]) -> Institution | None:
    """The active member institution an address belongs to, if any (its portal is then hers)."""
    return next(
        (i for i in institutions if i.active and i.email_domains and email_in_domains(email, i.email_domains)), None
    )


def accepts_address(institution: Institution, email: str) -> bool:
    """Whether someone with this address may join through the institution (the scheme's tenancy: anyone)."""
    return not institution.email_domains or email_in_domains(email, institution.email_domains)


def suspend(institution: Institution) -> tuple[Institution, InstitutionSuspended]:
    """No one may register through a suspended institution."""
    if not institution.active:
        raise StateConflict("institution_id", "already-suspended", f"{institution.institution_id} is already suspended")
    return replace(institution, active=False), InstitutionSuspended(institution_id=institution.institution_id)


def reactivate(institution: Institution) -> tuple[Institution, InstitutionReactivated]:
    """A suspended institution is active again."""
    if institution.active:
        raise StateConflict("institution_id", "already-active", f"{institution.institution_id} is already active")
    return replace(institution, active=True), InstitutionReactivated(institution_id=institution.institution_id)


def email_in_domains(email: str, domains: tuple[str, ...]) -> bool:
    """Whether the address belongs to one of the domains (subdomains included: med.uni.ac.uk)."""
    host = email.rsplit("@", 1)[-1].strip().lower()
    return any(host == d or host.endswith("." + d) for d in domains)
