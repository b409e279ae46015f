"""Feature vectors are extracted once, cached by (extractor, version), and the work can be cancelled."""

from __future__ import annotations

import numpy as np
import pytest

from aldesk.app.features import extract_features, load_features
from aldesk.app.importer import import_paths
from aldesk.errors import CancelledError


@pytest.fixture
def imported(project, scan_folder):
    import_paths(project, [scan_folder], jobs=1)
    return project


def test_extract_once_then_cached(imported):
    first = extract_features(imported, "default", jobs=1)
    assert (first.computed, first.cached) == (12, 0)
    second = extract_features(imported, "default", jobs=1)
    assert (second.computed, second.cached) == (0, 12)
    ids, X = load_features(imported, "default", jobs=1)
    assert X.shape == (12, first.dim) and X.dtype == np.float32 and np.isfinite(X).all()
    assert list(ids) == sorted(ids)


def test_new_version_recomputes(imported, monkeypatch):
    from aldesk.features.handcrafted import HandcraftedExtractor

    extract_features(imported, "default", jobs=1)
    monkeypatch.setattr(HandcraftedExtractor, "version", property(lambda self: "test-bumped"))
    again = extract_features(imported, "default", jobs=1)
    assert (again.version, again.computed) == ("test-bumped", 12)


def test_learned_extractor_state_is_stored_as_plain_arrays(imported):
    first = extract_features(imported, "learned", jobs=1)
    set_id = imported.features.find_set(first.extractor, first.version)
    state = imported.features.state(set_id)
    assert state and all(isinstance(v, np.ndarray) and v.dtype != object for v in state.values())
    _, X1 = load_features(imported, "learned", jobs=1)
    assert X1.shape[0] == 12


def test_extraction_can_be_cancelled_and_resumed(imported, monkeypatch):
    import aldesk.app.features as features

    monkeypatch.setattr(features, "CHUNK", 5)
    calls = {"n": 0}

    def stop_after_one_chunk():
        calls["n"] += 1
        return calls["n"] > 1

    with pytest.raises(CancelledError, match="cancelled"):
        extract_features(imported, "default", jobs=1, should_stop=stop_after_one_chunk)
    resumed = extract_features(imported, "default", jobs=1)
    assert (resumed.cached, resumed.computed) == (5, 7)


def test_process_pool_gives_the_same_vectors(imported, monkeypatch):
    import aldesk.app.features as features

    _, X1 = load_features(imported, "default", jobs=1)
    monkeypatch.setattr(features, "IN_PROCESS_BELOW", 0)
    monkeypatch.setattr(features, "CHUNK", 4)
    from aldesk.features.handcrafted import HandcraftedExtractor

    monkeypatch.setattr(HandcraftedExtractor, "version", property(lambda self: "pool-run"))
    _, X2 = load_features(imported, "default", jobs=2)
    np.testing.assert_allclose(X1, X2, rtol=1e-6)
