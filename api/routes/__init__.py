"""HTTP routers, one module per interface."""
