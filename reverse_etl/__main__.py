"""`python -m reverse_etl`: see `reverse_etl.cli`."""

import sys

from reverse_etl.cli import main

sys.exit(main())
