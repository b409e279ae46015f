"""Reading scans and turning their pixels into something a human can look at.

Pure: numpy, pydicom (+ pylibjpeg plugins), Pillow, scikit-image. Never imports Qt, sqlite or the
store, and never knows how a project lays out its files. Never modifies a source file.
"""
