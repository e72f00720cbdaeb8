"""Fuzzing every parser of outside bytes (docs/fuzzing.md)."""
