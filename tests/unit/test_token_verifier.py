"""Access tokens: verified against the issuer's keys, remembered until they expire, refused once their key goes."""

import asyncio

import pytest

from aimms_registration.tokens import TokenIssuer, new_signing_key_pem
from aimms_shared.auth import TokenVerifier, Unauthenticated


class Keys:
    """The issuer's JWKS endpoint, which an operator may empty (a withdrawn key)."""

    def __init__(self, issuer: TokenIssuer) -> None:
        self.jwks = issuer.jwks()
        self.loads = 0

    async def load(self) -> dict:
        self.loads += 1
        return self.jwks


def issuer(ttl_seconds: int = 900) -> TokenIssuer:
    return TokenIssuer(new_signing_key_pem(), issuer="aimms-registration", ttl_seconds=ttl_seconds)


async def test_a_token_is_verified_once_and_then_remembered() -> None:
    tokens = issuer()
    keys = Keys(tokens)
    verifier = TokenVerifier(keys.load, issuer="aimms-registration")
    token = tokens.issue("portal-1", "northgate", ("participants:write",))

    first = await verifier.verify(token)
    assert (first.client_id, first.institution_id, first.scopes) == ("portal-1", "northgate", {"participants:write"})
    assert await verifier.verify(token) == first
    assert keys.loads == 1


async def test_a_remembered_token_is_refused_once_its_key_is_withdrawn() -> None:
    tokens = issuer()
    keys = Keys(tokens)
    verifier = TokenVerifier(keys.load, issuer="aimms-registration", refresh_after_seconds=0)
    token = tokens.issue("portal-1", "northgate", ("participants:write",))
    await verifier.verify(token)

    keys.jwks = {"keys": []}
    with pytest.raises(Unauthenticated, match="unknown key"):
        await verifier.verify(token)


async def test_a_remembered_token_is_refused_once_it_expires() -> None:
    tokens = issuer(ttl_seconds=2)  # expires 1-2 s from now (whole seconds)
    verifier = TokenVerifier(Keys(tokens).load, issuer="aimms-registration")
    token = tokens.issue("portal-1", "northgate", ("participants:write",))
    await verifier.verify(token)

    await asyncio.sleep(2.1)
    with pytest.raises(Unauthenticated, match="expired"):
        await verifier.verify(token)


async def test_a_tampered_token_is_refused_even_after_the_genuine_one_was_verified() -> None:
    tokens = issuer()
    verifier = TokenVerifier(Keys(tokens).load, issuer="aimms-registration")
    token = tokens.issue("portal-1", "northgate", ("participants:write",))
    await verifier.verify(token)

    header, claims, signature = token.split(".")
    with pytest.raises(Unauthenticated, match="invalid"):
        await verifier.verify(f"{header}.{claims}.{signature[:-4]}AAAA")


async def test_tokens_naming_made_up_keys_do_not_each_make_a_call_to_the_issuer() -> None:
    genuine, stranger = issuer(), issuer()
    keys = Keys(genuine)
    verifier = TokenVerifier(keys.load, issuer="aimms-registration")
    await verifier.verify(genuine.issue("portal-1", "northgate", ("participants:write",)))

    for n in range(20):  # each signed by a key the issuer never published
        with pytest.raises(Unauthenticated, match="unknown key") as refused:
            await verifier.verify(stranger.issue(f"forger-{n}", "northgate", ("participants:write",)))
    assert keys.loads == 1  # within seconds of the last fetch an unknown key refetches nothing, let alone twenty
    assert refused.value.headers()["WWW-Authenticate"].startswith("Bearer")


async def test_rotating_the_signing_key_signs_nobody_out() -> None:
    old_pem, new_pem = new_signing_key_pem(), new_signing_key_pem()
    before = TokenIssuer(old_pem, issuer="aimms-registration", ttl_seconds=900)
    token_from_before = before.issue("portal-1", "northgate", ("participants:write",))
    after = TokenIssuer(new_pem, issuer="aimms-registration", ttl_seconds=900, retired_key_pems=old_pem)
    keys = Keys(after)
    verifier = TokenVerifier(keys.load, issuer="aimms-registration")

    assert [k["kid"] for k in after.jwks()["keys"]] == [after.kid, before.kid]
    assert (await verifier.verify(token_from_before)).client_id == "portal-1"  # issued before the rotation
    assert (await verifier.verify(after.issue("portal-2", "northgate", ()))).client_id == "portal-2"

    keys.jwks = TokenIssuer(new_pem, issuer="aimms-registration", ttl_seconds=900).jwks()  # the old key dropped
    fresh = TokenVerifier(keys.load, issuer="aimms-registration")
    with pytest.raises(Unauthenticated, match="unknown key"):
        await fresh.verify(token_from_before)
