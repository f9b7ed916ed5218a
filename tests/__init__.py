"""The test suite (a package, so that `tests.conftest` is ours and not the `tests` that neurokit2 installs)."""
