"""The connector's entry point, as OpenCTI's connectors have it: `python src/main.py` (the package installed).

`malbeacon-connector` and `python -m malbeacon_connector` do the same. Settings problems end with a
message and exit status 2; anything unexpected is printed with its traceback and exits 1.
"""

import sys
import traceback

from malbeacon_connector.cli import main

if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except Exception:
        traceback.print_exc()
        sys.exit(1)
