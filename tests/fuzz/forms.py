"""How hard each fuzz test tries: the short form (every run, CI) and the long form (`-m long`).

The short form is derandomised: the same inputs every run, so CI is repeatable and a failure
is there again on the next run. The long form explores new inputs each time and prints the
blob that reproduces a failure (`@reproduce_failure`).
"""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

# Generation itself is part of the work here (big JSON documents, whole HTTP requests).
_QUIET = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
          HealthCheck.function_scoped_fixture]


def short_form(max_examples: int) -> settings:
    return settings(max_examples=max_examples, deadline=None, database=None, derandomize=True,
                    suppress_health_check=_QUIET)


def long_form(max_examples: int) -> settings:
    return settings(max_examples=max_examples, deadline=None, database=None, derandomize=False,
                    print_blob=True, suppress_health_check=_QUIET)


def in_both_forms(short_examples: int, long_examples: int, **strategies):
    """A property as two tests, `test_x, test_x_long = in_both_forms(...)(check)`: the short one
    and the long one (marked `long`), each its own @given wrapper of `check`."""

    def make(check):
        short = short_form(short_examples)(given(**strategies)(check))
        long = pytest.mark.long(long_form(long_examples)(given(**strategies)(check)))
        return short, long

    return make
