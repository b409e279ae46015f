"""Models, query strategies and the simulation of a labelling campaign.

Pure: numpy and scikit-learn only. Never imports Qt, sqlite or the store; works on arrays the use-case
layer hands it. Models are never pickled: they are plain arrays or retrained from labels.
"""
