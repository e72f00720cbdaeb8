"""The fleet agent: its own process on every kiosk (DESIGN §8), so it can report a dead app.

It reads the kiosk app's local health endpoint (kiosk/health.py), sends signed heartbeats to
the fleet server, buffers them while the server is unreachable, runs the commands the server
hands back and reports each result. `kiosk agent` runs `fleet.agent.main.main`.
"""
