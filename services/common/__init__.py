"""Framework-neutral pieces shared by both serving stacks: model specs and artifact I/O.

Nothing here imports torch or tensorflow; both sides (and the gateway's validation
and the load tests' payloads, through ``artifacts/manifest.json``) depend on it.
"""
