"""The fleet server (`kiosk fleet-server`): the central monitoring service for the kiosks.

Pure logic: states (online → late → offline), rules (alert conditions, who acts).
Storage: schema (tables), db (engines, the SQLite writer thread, upserts).
Paths: ingest (group-committed heartbeats), evaluator (states, alerts, expiry; one elected
leader), enrolment, device_auth (signed requests, key cache), credentials (revoked
maintenance credentials), ops (what ops do), users (roles, region scopes, tokens), queries
(what the API and the dashboard read).
HTTP: app (composition root), context (app keys), routes (the route table), api_models,
openapi, metrics, errors. Entry points: cli (`main(argv)`), testing (`running_fleet_server`).
See docs/fleet.md.
"""
