"""The outside interfaces: FastAPI app factory, routers, errors and the `sitewatch` CLI."""
