"""aldesk: label medical scans where an active-learning model says a human's time counts most."""

__version__ = "0.1.0"
