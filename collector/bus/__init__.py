"""Shared collectors on NATS JetStream: several collectors share one fleet, each owning partitions.

`partitions` (which partition a device is in, subjects and topics), `settings` (`[bus]`), `leases`
(who owns what: the plan), `link` (the NATS connection: stream, consumers, lease renewal, the
leader lease), `source` (the collector's input and ownership, built on the link).
"""
