"""The gateway's second public protocol, beside its own JSON API (``/v1``, :mod:`gateway.routes`).

:mod:`.v2` speaks the Open Inference Protocol (KServe v2, Triton's HTTP/gRPC API) over
REST and gRPC, as thin adapters over the same :class:`~gateway.dataplane.DataPlane`.
"""
