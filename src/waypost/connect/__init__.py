"""Connect: the service mesh's CA, registrations and intentions."""
