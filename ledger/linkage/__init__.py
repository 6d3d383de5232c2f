"""Need-to-know linkage (issue #19): sealed messages between roles, per-agency codes, the transport interface.

Pure code (no database, no broker client): the Kafka transport lives in ``consumers/kafka_transport.py``.
Design and what is left: docs/linkage.md.
"""
