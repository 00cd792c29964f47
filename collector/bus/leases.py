"""Who should own which partition: the plan each collector makes from the lease bucket (pure).

The bucket (a NATS key-value bucket whose entries live `lease_ttl_s` unless renewed) holds
`partition.<p>` = the owning collector's name for every partition owned, `member.<name>` for every
collector alive, and `leader` for the one hosting the ticket runtime. Each collector aims at an
equal share, `ceil(partitions / members)`: above it, it gives partitions up (written first, then
handed over); below it, it claims free ones. A claim is a create-if-absent, so two collectors
never both get one partition; a free partition is one whose entry was deleted (handed over) or
expired (its owner died).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

PARTITION_KEY = "partition."
MEMBER_KEY = "member."
LEADER_KEY = "leader"


def partition_key(partition: int) -> str:
    return f"{PARTITION_KEY}{partition}"


def member_key(name: str) -> str:
    return MEMBER_KEY + "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


@dataclass(frozen=True)
class Plan:
    claim: tuple[int, ...] = ()
    release: tuple[int, ...] = ()


def plan(partitions: int, me: str, keys: Iterable[str], mine: Iterable[int]) -> Plan:
    """What `me`, owning `mine`, should claim and give up, given the keys present in the bucket."""
    keys = set(keys)
    members = {k for k in keys if k.startswith(MEMBER_KEY)} | {member_key(me)}
    taken = {int(k[len(PARTITION_KEY):]) for k in keys
             if k.startswith(PARTITION_KEY) and k[len(PARTITION_KEY):].isdigit()}
    owned = sorted(set(mine))
    target = math.ceil(partitions / len(members))
    if len(owned) > target:
        return Plan(release=tuple(owned[target:]))
    free = [p for p in range(partitions) if p not in taken and p not in owned]
    # Collectors start their search at different places, so that they seldom race for one partition.
    start = zlib.crc32(me.encode()) % partitions
    free.sort(key=lambda p: (p - start) % partitions)
    return Plan(claim=tuple(free[:max(0, target - len(owned))]))
