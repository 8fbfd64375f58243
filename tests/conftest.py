"""Hypothesis profiles, chosen with the HYPOTHESIS_PROFILE environment variable.

    default, ci   100 examples per property, no deadline (CI machines are slow and noisy)
    dev           20 examples, for a quick loop while editing

Examples are random on every run (derandomize=False): a run can find what an earlier one missed.
A failure prints its falsifying example and a @reproduce_failure blob (print_blob) to replay it.
"""

import os

from hypothesis import settings

_COMMON = dict(deadline=None, derandomize=False, print_blob=True)

settings.register_profile("default", max_examples=100, **_COMMON)
settings.register_profile("ci", max_examples=100, **_COMMON)
settings.register_profile("dev", max_examples=20, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
