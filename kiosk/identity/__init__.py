"""Citizen identity: the three sources (苏服码, ID card, 社保卡) and their validation."""
