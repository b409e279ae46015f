"""The feature matrix: streamed out of SQLite into one writable array, in scan-id order."""

from __future__ import annotations

import numpy as np

from aldesk.learning.base import standardize
from aldesk.store import Project

from .test_backup_previews import _add_scans


def test_matrix_streams_every_vector_in_id_order_into_a_writable_array(tmp_path):
    with Project.create(tmp_path / "p", ["a", "b"]) as p:
        ids = np.asarray(_add_scans(p, 9000))  # more rows than one streamed block
        X = np.random.default_rng(3).normal(5.0, 2.0, (len(ids), 7)).astype(np.float32)
        set_id = p.features.create_set("handcrafted", "1", 7, None)
        order = np.random.default_rng(4).permutation(len(ids))  # stored in any order
        p.features.put(set_id, ids[order], X[order])
        got_ids, got = p.features.matrix(set_id)
        assert np.array_equal(got_ids, np.sort(ids)) and got.dtype == np.float32 and got.flags.writeable
        np.testing.assert_array_equal(got, X[np.argsort(ids)])
        # standardising it in place (as load_dataset does) never touches the stored vectors
        standardize(got, in_place=True)
        assert abs(float(got.mean())) < 1e-3
        np.testing.assert_array_equal(p.features.matrix(set_id)[1], X[np.argsort(ids)])
        empty = p.features.create_set("learned", "1", 7, None)
        e_ids, e = p.features.matrix(empty)
        assert e_ids.shape == (0,) and e.shape == (0, 7)


def test_standardize_in_place_writes_into_x_and_equals_the_copy():
    X = np.random.default_rng(5).normal(50.0, 3.0, (1000, 4)).astype(np.float32)
    copy = standardize(X)
    same = standardize(X, in_place=True)
    assert same is X
    np.testing.assert_array_equal(same, copy)
