#!/bin/sh
# Creates every Kafka topic of the platform, each with its dead-letter topic; safe to rerun.
# Brokers are run with automatic topic creation off, so partitions and policies are decided here.
# Keep the list in step with the Topic(...) declarations in shared/aimms_shared/contracts/, and
# deploy/k8s/base/create-topics.sh identical to this file (tests/deploy checks both).
#
# KAFKA_BOOTSTRAP_SERVERS    brokers (required)
# TOPIC_NAMESPACE            prefix of every topic, as the services' *_TOPIC_NAMESPACE (default none)
# TOPIC_REPLICATION_FACTOR   1 on a single broker; 3 in production (default 1)
# TOPIC_MIN_INSYNC_REPLICAS  replicas that must have a write before acks=all succeeds (default 1)
# DLQ_RETENTION_MS           how long dead letters wait for someone to look (default 14 days)
set -eu

: "${KAFKA_BOOTSTRAP_SERVERS:?set KAFKA_BOOTSTRAP_SERVERS}"
kafka_topics="${KAFKA_TOPICS_COMMAND:-/opt/kafka/bin/kafka-topics.sh}"
namespace="${TOPIC_NAMESPACE:-}"
replication="${TOPIC_REPLICATION_FACTOR:-1}"
min_insync="${TOPIC_MIN_INSYNC_REPLICAS:-1}"
dlq_retention_ms="${DLQ_RETENTION_MS:-1209600000}"

create() {  # name partitions [--config key=value ...]
    name="${namespace:+$namespace.}$1"
    partitions="$2"
    shift 2
    "$kafka_topics" --bootstrap-server "$KAFKA_BOOTSTRAP_SERVERS" --create --if-not-exists \
        --topic "$name" --partitions "$partitions" --replication-factor "$replication" \
        --config "min.insync.replicas=$min_insync" "$@"
    echo "topic $name: ready"
}

topic() {  # name partitions [--config key=value ...]: the topic and its dead-letter topic
    create "$@"
    # Dead letters are deleted after a while, never compacted: an erased person's contact
    # details must not outlive the retention in a dead-letter copy.
    create "$1.dlq" "$2" --config "retention.ms=$dlq_retention_ms"
}

topic registration.institutions 3
topic registration.programmes 3
topic registration.interests 3
topic registration.participants 3
# The latest contact details per participant. Erasure writes a tombstone; the lag bound makes
# compaction drop the erased record within a day instead of whenever a segment happens to roll.
topic registration.contacts 3 --config cleanup.policy=compact --config max.compaction.lag.ms=86400000
topic matching.preferences 3
topic matching.pairs 3
topic matching.concerns 3
topic matching.waiting 3
topic matching.circles 3
topic notifications.deliveries 3
topic surveys.invitations 3
topic surveys.responses 3
