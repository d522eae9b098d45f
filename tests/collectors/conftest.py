"""Fixtures of the collectors' tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def extra_profiles(tmp_path, monkeypatch):
    """Add device profiles beside the shipped ones for one test: ``extra_profiles(name, yaml_text)``
    writes ``name.yaml`` into a copy of the profile directory the loader then reads (its cache
    cleared before and after)."""
    import model.profile as profile_mod

    folder = tmp_path / "profiles"
    folder.mkdir()
    for f in profile_mod.PROFILE_DIR.glob("*.yaml"):
        (folder / f.name).write_text(f.read_text())
    monkeypatch.setattr(profile_mod, "PROFILE_DIR", folder)
    profile_mod.load_profile.cache_clear()

    def add(name: str, text: str) -> None:
        (folder / f"{name}.yaml").write_text(text)
        profile_mod.load_profile.cache_clear()

    yield add
    profile_mod.load_profile.cache_clear()
