"""`python -m malbeacon_connector`: see `cli.py`."""

import sys

from malbeacon_connector.cli import main

if __name__ == "__main__":
    sys.exit(main())
