"""The local Kafka's storage is formatted whatever its random cluster id looks like."""

from pathlib import Path

import pytest

from aimms_deploy import paths
from aimms_deploy.local_stack import Kafka, LocalStack

pytestmark = pytest.mark.integration


def test_a_cluster_id_beginning_with_a_dash_formats_the_storage(tmp_path: Path) -> None:
    # A base64url id begins with "-" once in 64; passed as its own argument, it read as an option.
    jars = paths.var_dir() / "kafka" / "libs"
    if not (jars / ".installed").exists():
        pytest.skip("the local Kafka jars are not installed (aimms local install)")
    kafka = Kafka(LocalStack(var_dir=tmp_path))
    kafka.libs = jars
    kafka.home.mkdir(parents=True)
    kafka.cluster_id_file.write_text("-v-YFcAq2djl4in98bg7lg\n")

    kafka.prepare(lambda _: None)

    assert "cluster.id=-v-YFcAq2djl4in98bg7lg" in (kafka.data / "meta.properties").read_text()
