"""Test-wide settings: Qt offscreen, isolated data folders, and no silent skips in CI."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

# Qt aborts on a machine with no display unless told to draw offscreen; set before any import.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=60, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _isolated_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Never touch the user's real data folder or database."""
    data = tmp_path / "scorer-data"
    monkeypatch.setenv("SCORER_DATA_DIR", str(data))
    monkeypatch.setenv("SCORER_CONFIG", str(tmp_path / "no-site-config.toml"))
    monkeypatch.delenv("SCORER_DB", raising=False)
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """In CI a skipped test is a failure: a test CI was meant to run must not silently skip."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI") and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.longrepr = f"skipped in CI, which must run every test: {reason}"
