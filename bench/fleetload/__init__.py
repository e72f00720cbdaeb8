"""The load generator of bench/fleet.py, run as its own process (`python -m bench.fleetload`).

It turns a file of simulated kiosks (id, site, private key) into pools of complete HTTP
requests — signed heartbeats for the fleet server, or the same statuses as Prometheus text
for a Pushgateway — written before the timed run, and then has `wrk` (C, epoll) send them as
fast as the target answers. Signing happens ahead of time because every heartbeat carries its
own signature over a strictly increasing counter: a client that signed while sending would
spend its CPU on ECDSA and measure itself, not the server.
"""
