"""etcd's own view of its cluster: members (MemberList) and each one's Status, for operators.

Kept apart from ``EtcdStore`` because it asks every member directly, on a short-lived
channel each, while the store deliberately talks to one member at a time. A member that
does not answer within ``deadline`` seconds is reported unhealthy with the reason, not dropped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import grpc
from aetcd import rpc  # type: ignore[import-untyped]

__all__ = ["EtcdMemberStatus", "cluster_status"]

_TIMEOUT = 2.0


@dataclass(frozen=True)
class EtcdMemberStatus:
    ID: str
    Name: str
    PeerURLs: list[str]
    ClientURLs: list[str]
    Learner: bool
    Healthy: bool
    Leader: bool = False
    RaftIndex: int = 0
    RaftTerm: int = 0
    Error: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


async def cluster_status(endpoints: Sequence[str], deadline: float = _TIMEOUT) -> list[EtcdMemberStatus]:
    """Every member the first answering endpoint lists, with its health; a cluster no
    endpoint answers for is reported as one unhealthy entry per endpoint."""
    members: list[Any] | None = None
    errors: dict[str, str] = {}
    for endpoint in endpoints:
        try:
            async with grpc.aio.insecure_channel(endpoint) as channel:
                reply = await rpc.ClusterStub(channel).MemberList(rpc.MemberListRequest(), timeout=deadline)
            members = list(reply.members)
            break
        except grpc.aio.AioRpcError as exc:
            errors[endpoint] = exc.details() or str(exc.code())
    if members is None:
        return [EtcdMemberStatus("", e, [], [e], False, False, Error=msg) for e, msg in errors.items()]
    return list(await asyncio.gather(*(_status(m, deadline) for m in members)))


async def _status(member: Any, deadline: float) -> EtcdMemberStatus:
    client_urls = list(member.clientURLs)
    base = EtcdMemberStatus(
        ID=f"{member.ID:x}",
        Name=member.name,
        PeerURLs=list(member.peerURLs),
        ClientURLs=client_urls,
        Learner=bool(member.isLearner),
        Healthy=False,
    )
    if not client_urls:
        return replace(base, Error="member has not started")
    target = client_urls[0].split("://", 1)[-1]
    try:
        async with grpc.aio.insecure_channel(target) as channel:
            status = await rpc.MaintenanceStub(channel).Status(rpc.StatusRequest(), timeout=deadline)
    except grpc.aio.AioRpcError as exc:
        return replace(base, Error=exc.details() or str(exc.code()))
    return replace(
        base,
        Healthy=not status.errors,
        Leader=status.leader == member.ID,
        RaftIndex=int(status.raftIndex),
        RaftTerm=int(status.raftTerm),
        Error="; ".join(status.errors),
    )
