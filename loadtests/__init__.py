"""Locust load tests of duoserve, and their report.

Public entry points:

- ``python -m loadtests run [--profile default] [--model ...] ...``: run a scenario profile
  against a running stack and write ``reports/<time>/`` (:mod:`loadtests.runner`).
- ``python -m loadtests report <dir>``: rebuild the report of an earlier run (:mod:`loadtests.report`).
- ``loadtests/locustfile.py``: the Locust users, for plain ``locust`` and master/worker runs.

:mod:`loadtests.payload`, :mod:`loadtests.checks`, :mod:`loadtests.slo`, :mod:`loadtests.targets`,
:mod:`loadtests.profile` and :mod:`loadtests.report` never import Locust (or gevent);
:mod:`loadtests.engine` and :mod:`loadtests.locustfile` do.
"""
