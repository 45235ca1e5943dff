"""`python -m experiments.reproduce`: see experiments.reproduce."""

from experiments.reproduce import main

if __name__ == "__main__":
    main()
