"""The Kivy touch UI. It observes the core (`kiosk/`) and adds no journey logic of its own.

Import `screens.boot` and call `prepare()` before anything imports Kivy.
"""
