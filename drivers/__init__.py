"""Devices: card readers, QR scanners, printers, behind one status model (DESIGN §4).

Not built yet: the device issue adds the drivers here and their simulators in drivers/sim/.
"""
