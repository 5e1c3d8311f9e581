"""Where the deploy sources live and where runtime state (var/) goes."""

from __future__ import annotations

import os
from pathlib import Path

# This file is <repo>/deploy/aimms_deploy/paths.py; the package is installed editable,
# so the Kafka pom and the FerretDB Go module are found next to it in the source tree.
DEPLOY_DIR = Path(__file__).resolve().parents[1]
REPO_ROOT = Path(__file__).resolve().parents[2]
LOCAL_DIR = DEPLOY_DIR / "local"
KAFKA_SRC_DIR = LOCAL_DIR / "kafka"
FERRETDB_SRC_DIR = LOCAL_DIR / "ferretdb"


def var_dir() -> Path:
    """Return the runtime state directory: $AIMMS_VAR_DIR, else <repo>/var."""
    override = os.environ.get("AIMMS_VAR_DIR")
    return Path(override).expanduser().resolve() if override else REPO_ROOT / "var"
