"""`python -m unionpose` (and `torchrun -m unionpose`) run the command line."""
import sys

from unionpose.cli import main

sys.exit(main())
