"""/v1/agent/metrics in Consul's JSON shape and in Prometheus text format."""

from __future__ import annotations

import resource
import time
from typing import TYPE_CHECKING

from waypost.api.common import json_response
from waypost.api.http import Response
from waypost.api.stream import hub_of

if TYPE_CHECKING:
    from waypost.api.app import ApiApp


def _gauges(app: ApiApp) -> dict[str, float]:
    idx = app.agent.require_state().indexes  # empty on a client agent with no server yet
    usage = resource.getrusage(resource.RUSAGE_SELF)
    feed = app.agent.replica_feed
    return {
        "consul.catalog.services": float(len(idx.instances)),
        "consul.catalog.nodes": float(len(idx.nodes)),
        "consul.kvs.entries": float(len(idx.kv)),
        "consul.kvs.tombstones": float(len(idx.kv_tombstones)),
        "consul.session.active": float(len(idx.sessions)),
        "consul.blocking_queries.waiting": float(idx.topics.waiter_count()),
        "waypost.stream.readers": float(hub_of(app.agent.require_state()).readers()),
        "waypost.client.views": float(len(app.agent.views)),
        "waypost.server.replica_streams": float(len(feed) if feed is not None else 0),
        "consul.state.revision": float(idx.revision),
        "consul.state.quarantined_keys": float(len(idx.quarantined)),
        "consul.runtime.max_rss_kb": float(usage.ru_maxrss),
        "consul.agent.local.services": float(len(app.agent.local.services)),
        "consul.agent.local.checks": float(len(app.agent.local.checks)),
    }


def _counters(app: ApiApp) -> dict[str, int]:
    """Totals since start-up; a scrape or a sampled window sees them only grow."""
    state = app.agent.require_state()
    feed = app.agent.replica_feed
    return {
        "consul.state.decode_errors": state.decode_errors,
        "waypost.stream.cut_off": hub_of(state).cut_off,
        "waypost.client.view_reads": app.agent.views.answered,
        "waypost.server.replica_cut_off": feed.cut_off if feed is not None else 0,
    }


def _sampled(name: str, total: int) -> dict[str, object]:
    """A counter in go-metrics' ``SampledValue`` shape, one increment per sample."""
    unit = 1.0 if total else 0.0
    return {
        "Name": name,
        "Count": total,
        "Sum": float(total),
        "Min": unit,
        "Max": unit,
        "Mean": unit,
        "Stddev": 0.0,
        "Labels": {},
    }


def metrics_response(app: ApiApp, prometheus: bool) -> Response:
    gauges = _gauges(app)
    counters = _counters(app)
    if prometheus:
        lines = []
        for name, value in gauges.items():
            metric = name.replace(".", "_")
            lines.append(f"# TYPE {metric} gauge\n{metric} {value}")
        for name, total in counters.items():
            metric = name.replace(".", "_")
            lines.append(f"# TYPE {metric} counter\n{metric} {total}")
        return Response(
            ("\n".join(lines) + "\n").encode(), content_type="text/plain; version=0.0.4; charset=utf-8"
        )
    stamp = time.strftime("%Y-%m-%d %H:%M:%S +0000 UTC", time.gmtime())
    return json_response(
        {
            "Timestamp": stamp,
            "Gauges": [{"Name": k, "Value": v, "Labels": {}} for k, v in gauges.items()],
            "Points": [],
            "Counters": [_sampled(k, v) for k, v in counters.items()],
            "Samples": [],
        }
    )
