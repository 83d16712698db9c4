"""`python -m hacm.visualize`: see hacm/visualize/__init__.py (the command) and masks.py (what it does)."""

import sys

from hacm.visualize import main

sys.exit(main())
