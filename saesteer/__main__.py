import sys

from saesteer.cli.main import main

sys.exit(main())
