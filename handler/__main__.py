"""`python -m handler ...`: the command line, which lives in `handler/tools/cli.py`."""

import sys

from handler.tools.cli import main

if __name__ == "__main__":
    sys.exit(main())
