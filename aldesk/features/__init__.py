"""Image -> vector extractors, found by name in a registry.

Pure: numpy, scikit-image, scikit-learn (and onnxruntime, optional). Never imports Qt, sqlite or
the store. Fitted state is plain arrays (``get_state``/``from_state``), never pickles.
"""
