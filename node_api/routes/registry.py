"""Every router the API serves, in one list (the app factory mounts them all)."""

from __future__ import annotations

from fastapi import APIRouter

from node_api.routes import health

ROUTERS: list[APIRouter] = [health.router]
