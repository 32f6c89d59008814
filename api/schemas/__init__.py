"""Pydantic request and response models of the HTTP interfaces, one module per area."""
