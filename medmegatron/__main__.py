import sys

from medmegatron.cli import main

if __name__ == "__main__":  # guard: multiprocessing 'spawn' children re-import this module
    sys.exit(main())
