"""The fleet agent (runs on each kiosk) and the central monitoring server (DESIGN §8).

Not built yet: the fleet issue adds fleet/agent and fleet/server.
"""
