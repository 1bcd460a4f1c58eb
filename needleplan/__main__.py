import sys

from needleplan.cli import main

sys.exit(main())
