"""The seam between prepared queries and WAN federation.

A prepared query lives in one datacenter; when it fails over, Consul sends the query's
*definition* to the other datacenter (RPC ``PreparedQuery.ExecuteRemote``), because the
other datacenter does not hold the query. Over HTTP we do the same: the local agent POSTs
the rendered definition to ``EXECUTE_REMOTE_PATH`` on a server of the other datacenter,
which runs it against its own catalog without failing over again.
"""

from collections.abc import Mapping
from typing import Any, Protocol

EXECUTE_REMOTE_PATH = "/v1/internal/query/execute-remote"
"""Where a server answers a forwarded definition: POST, body = the definition's JSON
(the same object ``GET /v1/query/<id>`` returns, templates already rendered), query string
= the forwarded params, token in ``X-Consul-Token``. It answers like
``/v1/query/<id>/execute`` (200, same JSON)."""


class RemoteDatacenters(Protocol):
    """What the query executor needs from federation: ``waypost.wan.Federation``, which in a
    datacenter alone lists no other, so nothing fails over there."""

    def local_datacenter(self) -> str: ...

    def datacenters_by_distance(self) -> list[str]:
        """Other datacenters, nearest first by RTT, reachable or not (never the local one)."""
        ...

    async def execute_remote(
        self,
        dc: str,
        query: Mapping[str, Any],
        params: Mapping[str, str],
        token: str | None,
    ) -> bytes | None:
        """POST `query` (the definition as JSON) to EXECUTE_REMOTE_PATH on a server of `dc`.

        `params` are passed on as the query string (`connect`, `near`, `limit`; never `dc`)
        and `token` as X-Consul-Token. Returns the remote JSON body on a 2xx answer, or None
        when no server of `dc` answers (or it answers with an error): the executor then tries
        the next datacenter.
        """
        ...
