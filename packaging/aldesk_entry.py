"""The bundle's entry script: what ``aldesk`` (the PyInstaller executable) runs.

freeze_support() first: the importer and feature extraction use worker processes, which in a
frozen app (spawn on Windows and macOS) re-run this executable and must not start the app again.
"""

import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()
    from aldesk.main import main

    sys.exit(main())
