"""python -m minicnn.exercises: list, start and check the exercises (see minicnn/exercises/cli.py)."""
from minicnn.exercises.cli import main

raise SystemExit(main())
