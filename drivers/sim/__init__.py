"""Simulators that speak the same bytes as the hardware, for tests, demos and integrators."""
