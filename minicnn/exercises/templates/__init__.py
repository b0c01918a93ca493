"""The exercises' templates: `python -m minicnn.exercises start NAME` copies NAME.py from here.

Each is a file a learner fills in: the signature, the shapes and the maths in the docstring, and a
body that raises NotImplementedError until it is written. They are not imported by minicnn.
"""
