"""``python -m conveyor``: the same command line as the ``conveyor`` console script."""

from conveyor.cli import run

if __name__ == "__main__":
    run()
