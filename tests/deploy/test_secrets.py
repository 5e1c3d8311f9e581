"""deploy/secrets.spec: the one list of secrets the local stack and compose's generate-env.sh make."""

import re

import pytest

from aimms_deploy import secrets

from .helpers import SETTINGS, required_settings

SECRET_LIKE = re.compile(r"(KEY|KEYS|KEY_ID|SECRET|PASSWORD)$")


@pytest.mark.parametrize("service", list(SETTINGS))
def test_every_secret_a_service_requires_is_in_the_spec_and_made_fresh_for_the_local_stack(service: str) -> None:
    needed = {name for name in required_settings(service) if SECRET_LIKE.search(name)}
    listed = {s.name for s in secrets.spec()}
    made = secrets.fresh(f"{service.upper()}_", key_id="local-1")

    assert needed <= listed, f"not in deploy/secrets.spec: {needed - listed}"
    assert needed <= made.keys() and all(made.values())
    again = secrets.fresh(f"{service.upper()}_", key_id="local-1")
    kinds = {s.name: s.kind for s in secrets.spec()}
    assert all(made[name] != again[name] for name in made if kinds[name] != "key-id"), "each call makes new values"


def test_every_line_of_the_spec_has_a_known_kind_and_place() -> None:
    for secret in secrets.spec():
        assert secret.kind in ("random", "ed25519-pem", "aes-keys", "key-id"), secret
        assert secret.where in ("both", "compose"), secret
