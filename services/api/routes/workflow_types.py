"""/api/workflow-types: the declared workflow types (services/common/workflow_types.py), each
with its name, queue, description and input JSON Schema; the page builds its forms from it."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


async def list_workflow_types(request: Request) -> Response:
    return JSONResponse([t.describe() for t in request.app.state.catalogue])


routes = [Route("/api/workflow-types", list_workflow_types, methods=["GET"])]
