"""`python -m eq_backend`: see eq_backend.cli."""

import sys

from eq_backend.cli import main

sys.exit(main())
