"""STIX 2.1: the models, the conversion of records, the builder, ids, patterns, bundles."""
