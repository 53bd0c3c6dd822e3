import sys

from medmegatron.cli import main

sys.exit(main())
