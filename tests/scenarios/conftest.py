"""The scenario run, shared by the scenario modules (see `harness`)."""

from tests.scenarios.harness import run  # noqa: F401  (the session fixture)
