import sys

from aldesk.main import main

sys.exit(main())
