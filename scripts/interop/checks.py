"""The check helpers every interoperability script uses: one line per check, `N passed,
0 failed` at the end, and on the first failure the failure, `N passed, 1 failed` and exit 1.
"""

import sys
import traceback

from grafana_client.client import GrafanaException

_passed = 0


def check(description, fn):
    """Runs one check; on failure prints it and the tally, and exits 1."""
    global _passed
    try:
        detail = fn()
    except Exception as exc:  # noqa: BLE001 - any failure ends the run
        if isinstance(exc, GrafanaException):
            why = f"{type(exc).__name__} {exc.status_code}: {exc.message} (response: {exc.response!r})"
        else:
            why = f"{type(exc).__name__}: {exc}"
        print(f"FAIL {description}: {why}", flush=True)
        if not isinstance(exc, AssertionError):
            traceback.print_exc()
        print(f"{_passed} passed, 1 failed", flush=True)
        sys.exit(1)
    _passed += 1
    print(f"ok   {description}" + (f" ({detail})" if detail else ""), flush=True)
    return detail


def raises(exc_type, fn, status=None):
    """Calls fn and returns the exception of exc_type it raises; fails otherwise."""
    try:
        result = fn()
    except exc_type as exc:
        if status is not None:
            assert exc.status_code == status, f"expected status {status}, got {exc.status_code}: {exc.message}"
        return exc
    raise AssertionError(f"expected {exc_type.__name__}, but the call returned {result!r}")


def missing(obj, keys):
    """The keys of `keys` that `obj` lacks."""
    return [key for key in keys if key not in obj]


def done():
    """Prints the tally of a run in which every check passed."""
    print(f"{_passed} passed, 0 failed", flush=True)
