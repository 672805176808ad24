"""Allow `python -m chaoslab`."""

from chaoslab.cli import main

if __name__ == "__main__":
    main()
