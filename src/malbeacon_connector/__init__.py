"""Malbeacon enrichment for OpenCTI: attacker infrastructure behind C2 panels, as STIX 2.1."""

__version__ = "1.0.0"
