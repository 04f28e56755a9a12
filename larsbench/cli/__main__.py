"""`python -m larsbench.cli`: the same as the `larsbench` console script."""

import sys

from larsbench.cli import main

if __name__ == "__main__":
    sys.exit(main())
