"""Agreement between readers, consensus labels and suspected label errors.

Pure: numpy and scikit-learn. Never imports Qt, sqlite or the store.
"""
