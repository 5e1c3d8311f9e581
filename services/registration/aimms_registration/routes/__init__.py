"""Registration's HTTP API, as portals and coordinators see it; each route calls a use case."""

from aimms_registration.routes import auth, institutions, participants, programmes, reports

ROUTERS = [auth.router, institutions.router, programmes.router, participants.router, reports.router]
