"""``waypost registrator``: containers of a Docker Engine registered as services, as Registrator does.

A client of the HTTP API like any third-party tool: it reaches the agent through
``waypost.client`` only. See README.md in this package for its parts and seams.
"""
