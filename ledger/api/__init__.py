"""The HTTP API and the staff console of one node (FastAPI). Nothing connects at import: :func:`create_app`
takes a node opened by :func:`ledger.runtime.bootstrap.open_node`."""

from __future__ import annotations

from ledger.api.app import create_app, openapi_document

__all__ = ["create_app", "openapi_document"]
