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
    assert (first.extractor, first.dim, first.computed, first.cached) == ("imagenet", 361 + 768, 12, 0)
    second = extract_features(imported, "default", jobs=1)
    assert (second.computed, second.cached) == (0, 12)
    ids, X = load_features(imported, "default", jobs=1)
    assert X.shape == (12, first.dim) and X.dtype == np.float32 and np.isfinite(X).all()
    assert list(ids) == sorted(ids)


def test_new_version_recomputes(imported, monkeypatch):
    from aldesk.features.imagenet import ImagenetExtractor

    extract_features(imported, "default", jobs=1)
    monkeypatch.setattr(ImagenetExtractor, "version", property(lambda self: "test-bumped"))
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
    from aldesk.features.imagenet import ImagenetExtractor

    monkeypatch.setattr(ImagenetExtractor, "version", property(lambda self: "pool-run"))
    _, X2 = load_features(imported, "default", jobs=2)
    np.testing.assert_allclose(X1, X2, rtol=1e-6)


def test_a_project_whose_cache_holds_only_the_old_default_vectors_extracts_the_new_ones_once(imported, monkeypatch):
    """Before the switch ``default`` built the handcrafted extractor, stored under the name "default", and its
    models were stored as "default" too. Such a project, opened now: the GUI's background retrain extracts
    the imagenet vectors once (with progress), trains and ranks on them; the CLI then finds them cached;
    the old vectors are left as they were."""
    from aldesk.app.labelling import record_label
    from aldesk.app.worklist import refresh_worklist
    from aldesk.cli import main
    from aldesk.features import registry
    from aldesk.features.handcrafted import HandcraftedExtractor

    ids = imported.scans.ids().tolist()
    for i, scan_id in enumerate(ids[:10]):  # two left to rank
        record_label(imported, scan_id, "dr_a", ("normal", "pneumonia")[i % 2])
    with monkeypatch.context() as old:  # the code before the switch
        old.setattr(HandcraftedExtractor, "name", "default")
        old.setattr(registry, "DEFAULT_EXTRACTOR", "handcrafted")
        before = refresh_worklist(imported, "dr_a", folds=2)
    old_set = imported.features.find_set("default", HandcraftedExtractor().version)
    assert old_set is not None and imported.features.dim(old_set) == 361
    assert before.model_id and imported.models.latest()["extractor"] == "default"
    old_ids, old_X = imported.features.matrix(old_set)

    seen = []
    after = refresh_worklist(imported, "dr_a", folds=2, progress=lambda done, total, msg: seen.append((done, total, msg)))
    assert (0, 12, "imagenet: 0 cached") in seen and (12, 12, "imagenet") in seen, seen
    new_set = imported.features.find_set("imagenet", registry.get_extractor("default").version)
    assert new_set is not None and imported.features.dim(new_set) == 1129
    assert after.model_id != before.model_id and imported.models.latest()["metrics"]["feature_version"] == \
        registry.get_extractor("imagenet").version
    assert after.scores, "the new features were not ranked"
    ids_again, X_again = imported.features.matrix(old_set)  # the old vectors are untouched
    np.testing.assert_array_equal(ids_again, old_ids)
    np.testing.assert_array_equal(X_again, old_X)

    imported.close()
    assert main(["features", str(imported.path), "--extractor", "default", "--quiet"]) == 0
    assert main(["train", str(imported.path), "--folds", "2", "--quiet"]) == 0
