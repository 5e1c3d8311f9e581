"""The README's first command, as a newcomer runs it: `make up` on an empty data directory.

It runs beside the stack the other tests use, on ports of its own and a data directory of its own,
so it installs, starts, seeds and matches from nothing, exactly as on a fresh clone.
"""

import os
import re
import subprocess
from pathlib import Path

import pytest

from aimms_deploy.paths import REPO_ROOT

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1200)]

# Far from the defaults (and from each other), so the stack the other tests use keeps its ports.
PORTS = {
    "AIMMS_KAFKA_PORT": "19092",
    "AIMMS_KAFKA_CONTROLLER_PORT": "19093",
    "AIMMS_FERRETDB_PORT": "37017",
    "AIMMS_SMTP_PORT": "11025",
    "AIMMS_REGISTRATION_PORT": "18001",
    "AIMMS_MATCHING_PORT": "18002",
    "AIMMS_SURVEYS_PORT": "18003",
    "AIMMS_NOTIFICATIONS_PORT": "18004",
    "AIMMS_PORTAL_PORT": "18005",
}
# Endpoints of the running test stack would make `make up` use it instead of starting its own.
INHERITED = ("KAFKA_BOOTSTRAP_SERVERS", "MONGODB_URI", "SMTP_HOST", "SMTP_PORT", "SMTP_SINK_DIR")


def test_make_up_works_on_an_empty_data_directory(tmp_path: Path) -> None:
    data = tmp_path / "var"
    environ = {k: v for k, v in os.environ.items() if k not in INHERITED} | PORTS | {"AIMMS_VAR_DIR": str(data)}

    def make(target: str, timeout: float) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["make", target],
            cwd=REPO_ROOT,
            env=environ,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    try:
        up = make("up", timeout=1000)
    finally:
        make("down", timeout=120)

    output = up.stdout + up.stderr
    assert up.returncode == 0, f"`make up` failed on an empty data directory:\n{output[-6000:]}"
    summary = re.search(r"(\d+) mentees, (\d+) mentors: (\d+) pairs proposed, (\d+) unmatched", output)
    assert summary is not None, output[-6000:]
    mentees, mentors, proposed, unmatched = map(int, summary.groups())
    assert (mentees, mentors) == (20, 14) and proposed + unmatched == mentees and proposed > 0
    assert "blocking pairs 0" in output
    # Its own ports, not the defaults; the dashboard with the credential to sign in with.
    assert re.search(r"http://127\.0\.0\.1:18005/coordinators  \(sign in with client ID \S+ and secret \S+\)", output)
    assert (data / "secrets").is_dir()  # everything it made lives in the data directory it was given
