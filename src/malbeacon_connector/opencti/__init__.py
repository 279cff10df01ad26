"""OpenCTI: message handling, the connector's process, the TLP gate, pushing bundles."""
