"""The public delta stream: catalog, health and KV changes as server-sent events."""
