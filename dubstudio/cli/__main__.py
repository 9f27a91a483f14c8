"""``python -m dubstudio.cli``."""

import sys

from dubstudio.cli import main

if __name__ == "__main__":  # imported by a module walk, it must not run
    sys.exit(main())
