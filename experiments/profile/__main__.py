"""`python -m experiments.profile`: see experiments.profile."""

from experiments.profile import main

if __name__ == "__main__":
    main()
