"""``flagledger topics ensure``: the broker's events and dead-letter topics."""

from __future__ import annotations

from ledger.cli.base import command, group, node, out
from ledger.cli.parsing import WHOLE, option

topics = group("topics", "broker topics")


@command(topics, "ensure", help="create the events and dead-letter topics")
@option("--partitions", type=WHOLE, default=None, help="default: kafka setting partitions")
@option("--replication", type=WHOLE, default=None, help="default: kafka setting replication_factor")
def ensure(partitions: int | None, replication: int | None) -> int:
    from consumers.broker import ensure_topics
    from consumers.settings import KafkaSettings

    opened = node()
    out({"created": ensure_topics(KafkaSettings.from_config(opened.config), partitions, replication)})
    return 0
