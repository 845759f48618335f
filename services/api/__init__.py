"""The API service: a Starlette app that enqueues and inspects workflows through DBOSClient."""
