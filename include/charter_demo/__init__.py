"""Demo material kept out of the library: the deterministic sample data and the PII evaluation harness."""
