"""Malformed label files and answer keys (issue 8, point 5): a clear error naming the line, nothing recorded.

Both readers of path,label CSVs are checked: ``label_from_csv`` (a reader's labels) and
``read_labelled_csv`` as ``aldesk simulate`` reads an answer key.
"""

from __future__ import annotations

import pytest

from aldesk.app.answers import read_labelled_csv
from aldesk.app.importer import import_paths
from aldesk.app.labelling import label_from_csv
from aldesk.errors import InputFileError
from tests.app.conftest import write_png

GOOD = "path,label\nimg_0.png,normal\nimg_1.png,pneumonia\n"

CASES = {
    # name: (file bytes, the line the error must name, text the message must contain)
    "missing header": (b"img_0.png,normal\nimg_1.png,pneumonia\n", 1, "header must name the columns"),
    "wrong column": (b"path,diagnosis\nimg_0.png,normal\n", 1, "must name the columns 'path'"),
    "bad UTF-8": (b"path,label\nimg_0.png,normal\nimg_1.png,pneumonia\nimg_\xff\xfe.png,normal\n", 4,
                  "not UTF-8 text"),
    "unknown label": (b"path,label\nimg_0.png,normal\nimg_1.png,cat\n", 3, "label 'cat' is not a class"),
    "duplicate conflicting rows": (b"path,label\nimg_0.png,normal\nimg_1.png,normal\nimg_0.png,pneumonia\n", 4,
                                   "same image as line 2"),
    "unknown path": (b"path,label\nimg_0.png,normal\nnope.png,normal\n", 3, "no imported scan has this path"),
    "unterminated quote": (b'path,label\nimg_0.png,normal\n"img_1.png,normal\n', 3, ""),
}


@pytest.fixture
def project_with_scans(project, tmp_path):
    folder = tmp_path / "scans"
    for i in range(3):
        write_png(folder / f"img_{i}.png", seed=i)
    assert import_paths(project, [folder], jobs=1).imported == 3
    return project


def _as_label_file(project, path):
    return label_from_csv(project, path, "dr_csv", strict=True)


def _as_answer_key(project, path):
    return read_labelled_csv(project, path, on_conflict="refuse")


@pytest.mark.parametrize("read", [_as_label_file, _as_answer_key], ids=["label file", "answer key"])
@pytest.mark.parametrize(("data", "line", "text"),
                         list(CASES.values()), ids=list(CASES))
def test_malformed_csv_names_the_line(project_with_scans, tmp_path, data, line, text, read):
    path = tmp_path / "in.csv"
    path.write_bytes(data)
    with pytest.raises(InputFileError, match=f"line {line}\\b") as err:
        read(project_with_scans, path)
    assert text in str(err.value) and str(path) in str(err.value)
    assert project_with_scans.labels.count() == 0, "a bad file must record nothing"


def test_the_good_file_is_accepted(project_with_scans, tmp_path):
    path = tmp_path / "in.csv"
    path.write_text(GOOD)
    assert label_from_csv(project_with_scans, path, "dr_csv")["added"] == 2
