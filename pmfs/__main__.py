"""`python -m pmfs` is the same entry point as the `pmfs` console script."""

import sys

from pmfs.cli import main

if __name__ == "__main__":
    sys.exit(main())
