"""`python -m steamer.cli`: the `steamer` command."""
import sys

from steamer.cli.main import main

sys.exit(main())
