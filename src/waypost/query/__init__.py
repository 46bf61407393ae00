"""Consul's prepared queries: stored service lookups with templates and datacenter failover."""
