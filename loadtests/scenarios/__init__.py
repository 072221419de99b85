"""Scenario profiles: ``default.yaml`` is what ``make run`` runs, ``quick.yaml`` the smoke test's."""
