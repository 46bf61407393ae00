"""``waypost proxy``: a health-aware L4 proxy in front of the catalog's services.

Its configuration (``config``) and upstream sets (``upstreams``) are shared with the other
proxies built on the catalog; the data plane reaches the agent only through ``waypost.client``.
"""
