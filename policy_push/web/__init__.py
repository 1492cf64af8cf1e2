"""The aiohttp web application: JSON API under ``/api/v1``, ``/healthz``, OpenAPI document."""

from .app import create_app

__all__ = ["create_app"]
