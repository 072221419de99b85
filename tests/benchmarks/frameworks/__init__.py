"""benchmarks.frameworks: parity of every runtime, the JSON schema, the quick mode's bounds."""
