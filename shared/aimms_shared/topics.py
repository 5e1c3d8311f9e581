"""Topics a service uses are created on start, with their layout, if the deployment has not made them.

A deployment's topic job (deploy/k8s/base/create-topics.sh, which compose mounts too) normally makes
them first, with their replication; this covers the local stack and tests, where each test's namespace
has its own topics.
Making them all before consuming also spares each consumer group a rebalance when one appears.
"""

from collections.abc import Iterable

import structlog
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from aimms_shared.events import Topic

log = structlog.get_logger(__name__)


async def ensure_topics(bootstrap_servers: str, topics: Iterable[tuple[str, Topic]]) -> None:
    """Create each missing `(kafka name, layout)`; replication is the cluster's default."""
    wanted = {name: layout for name, layout in topics}
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        missing = sorted(set(wanted) - set(await admin.list_topics()))
        if not missing:
            return
        new = [
            NewTopic(
                name,
                num_partitions=wanted[name].partitions,
                replication_factor=-1,  # the broker's default.replication.factor
                replica_assignments={},  # none: aiokafka asks for this alongside -1
                topic_configs={"cleanup.policy": "compact"} if wanted[name].compacted else {},
            )
            for name in missing
        ]
        response = await admin.create_topics(new)
        for name, code, *_ in response.topic_errors:
            # Another service or replica may have made it meanwhile; anything else is worth a line.
            if code not in (0, TopicAlreadyExistsError.errno):
                log.warning("topics.not_created", topic=name, error_code=code)
        log.info("topics.created", topics=missing)
    finally:
        await admin.close()
