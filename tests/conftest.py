"""Test-wide settings: debug checks on, and hypothesis profiles.

Profiles: `ci` (the default under CI=true: modest example counts, keeps the
suite well under 10 minutes on 2 cores), `dev` (default locally), `heavy`
(opt-in sweeps: FTRANS_HYPOTHESIS_PROFILE=heavy).
"""
import os

from hypothesis import HealthCheck, settings

import ir.config

ir.config.debug = True  # every staged jaxpr is type-checked, every impl result checked against its aval

settings.register_profile("ci", max_examples=25, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=60, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("heavy", max_examples=1000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("FTRANS_HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))
