"""Serving: the command line and the HTTP API, thin adapters around the other packages."""
