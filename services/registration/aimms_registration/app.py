"""Composition root of the registration service: `uvicorn --factory aimms_registration.app:create_app`."""

from fastapi import FastAPI

from aimms_registration import handlers, use_cases
from aimms_registration.routes import ROUTERS
from aimms_registration.settings import RegistrationSettings
from aimms_registration.store import OUTBOX_COLLECTIONS, RegistrationStore
from aimms_registration.tokens import TokenIssuer
from aimms_shared.auth import TokenVerifier
from aimms_shared.consumer import Subscriptions
from aimms_shared.contracts import registration as contracts
from aimms_shared.service import Runtime, create_service_app


def create_app(settings: RegistrationSettings | None = None) -> FastAPI:
    """Build the registration app from settings (environment when not given)."""
    settings = settings or RegistrationSettings()
    cipher = settings.field_cipher()
    issuer = TokenIssuer(
        settings.token_signing_key.get_secret_value(),
        issuer=settings.auth_issuer,
        ttl_seconds=settings.token_ttl_seconds,
        retired_key_pems=settings.token_previous_signing_keys.get_secret_value(),
    )

    async def own_keys() -> dict:
        return issuer.jwks()

    async def setup(app: FastAPI, runtime: Runtime) -> Subscriptions:
        store = RegistrationStore(runtime.db, cipher, runtime.outbox)
        await store.ensure_indexes()
        await use_cases.ensure_scheme_tenancy(store)
        if settings.bootstrap_admin_client_id and settings.bootstrap_admin_secret:
            await use_cases.ensure_admin_credential(
                store, settings.bootstrap_admin_client_id, settings.bootstrap_admin_secret.get_secret_value()
            )
        app.state.store = store
        app.state.token_issuer = issuer
        app.state.pages_url = settings.public_url
        return handlers.subscriptions()

    return create_service_app(
        "registration",
        settings,
        routers=ROUTERS,
        setup=setup,
        outbox_collections=OUTBOX_COLLECTIONS,
        produces=[
            contracts.InstitutionOnboarded,
            contracts.InstitutionSuspended,
            contracts.InstitutionReactivated,
            contracts.ProgrammeOpened,
            contracts.ProgrammeUpdated,
            contracts.InterestExpressed,
            contracts.ParticipantRegistered,
            contracts.ParticipantProfileUpdated,
            contracts.MentorCapacityChanged,
            contracts.EvaluationParticipationChanged,
            contracts.ParticipantWithdrawn,
            contracts.ParticipantErased,
            contracts.ParticipantLinkIssued,
            contracts.ParticipantContact,
        ],
        description="Institutions, programmes, credentials, expressions of interest and participants.",
        token_verifier=TokenVerifier(own_keys, issuer=settings.auth_issuer),
    )
