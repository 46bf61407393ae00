"""Waypost: service discovery with Consul's HTTP and DNS interfaces."""

__all__ = ["__version__"]

__version__ = "0.1.0"
