"""The command line: python -m minicnn.exercises [list | start NAME | check NAME FILE [--train ...]].

Exit status: 0 the check passed (and, with --train, the two runs agree); 1 it did not;
2 the command could not be carried out (an unknown exercise, a missing file, a file that start would
overwrite, no Fashion-MNIST for --train).
"""
import argparse
import importlib.util
import sys
from pathlib import Path

from minicnn.exercises import EXERCISES, training
from minicnn.exercises.checking import Report, brief_traceback, check
from minicnn.utils.files import atomic_write

PASSED, FAILED, USAGE = 0, 1, 2
PROG = "python -m minicnn.exercises"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog=PROG, description="Graded exercises: write a forward or backward pass yourself, let minicnn check "
                               "it stage by stage, then train the lab's network with it.")
    commands = parser.add_subparsers(dest="command", metavar="{list,start,check}")
    commands.add_parser("list", help="list the exercises (the default)")
    start = commands.add_parser("start", help="write an exercise's template to fill in")
    start.add_argument("name", help="the exercise, e.g. conv2d_backward")
    start.add_argument("--output", "-o", type=Path, help="where to write it (default: NAME.py in this folder)")
    checking = commands.add_parser("check", help="check your file, and with --train train the lab's network with it")
    checking.add_argument("name", help="the exercise, e.g. conv2d_backward")
    checking.add_argument("file", type=Path, help="your Python file, e.g. conv2d_backward.py")
    checking.add_argument("--train", action="store_true",
                          help="after a passing check, train the lab's network with your function and with minicnn's")
    checking.add_argument("--steps", type=int, default=training.DEFAULT_STEPS,
                          help=f"training steps of each run (default {training.DEFAULT_STEPS})")
    checking.add_argument("--batch-size", type=int, default=training.DEFAULT_BATCH_SIZE,
                          help=f"images per step (default {training.DEFAULT_BATCH_SIZE})")
    checking.add_argument("--images", type=int, default=None,
                          help="train on the first N training images only (default: all 60,000)")
    checking.add_argument("--every", type=int, default=None,
                          help=f"print the mean loss every N steps (default: steps / {training.SUMMARY_ROWS})")
    checking.add_argument("--seed", type=int, default=training.DEFAULT_SEED,
                          help=f"seed of the initial weights, the batches and the dropout masks "
                               f"(default {training.DEFAULT_SEED})")
    checking.add_argument("--plot", type=Path, default=None,
                          help="where to write the PNG of both loss curves (default: NAME_training.png here)")
    args = parser.parse_args(argv)
    if args.command in ("start", "check") and args.name not in EXERCISES:
        parser.error(f"no exercise named {args.name!r}; the exercises are: {', '.join(EXERCISES)}")
    if args.command == "check":
        _check_options(parser, args)
    return args


def _check_options(parser, args):
    if not args.file.is_file():
        parser.error(f"no such file: {args.file} (write one with: {PROG} start {args.name})")
    for option in ("steps", "batch_size", "images", "every"):
        value = getattr(args, option)
        if value is not None and value < 1:
            parser.error(f"--{option.replace('_', '-')} must be at least 1, got {value}")
    if args.plot is None:
        args.plot = Path(f"{args.name}_training.png")


def list_exercises():
    width = max(map(len, EXERCISES)) + 2
    print("The exercises (each asks for the functions in brackets):\n")
    for name, exercise in EXERCISES.items():
        print(f"  {name:<{width}}{exercise.summary} [{', '.join(exercise.functions)}]")
    print(f"\nStart one:  {PROG} start im2col                 (writes im2col.py here)")
    print(f"Check it:   {PROG} check im2col im2col.py")
    print(f"Train with: {PROG} check im2col im2col.py --train (the lab's network, yours beside minicnn's)")
    return PASSED


def start(name, output):
    """Write the template; never over an existing file."""
    path = output or Path(f"{name}.py")
    if path.exists():
        print(f"{PROG} start: {path} exists already; not overwriting it (move it away, or use --output)",
              file=sys.stderr)
        return USAGE
    with atomic_write(path, "w", encoding="utf-8") as stream:
        stream.write(EXERCISES[name].template())
    print(f"wrote {path}: write the body of {', '.join(EXERCISES[name].functions)}, then run\n"
          f"  {PROG} check {name} {path}")
    return PASSED


def load(path):
    """Import the learner's file as a module; (module, None), or (None, what went wrong)."""
    spec = importlib.util.spec_from_file_location(f"learners_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as error:
        return None, f"{path} has a syntax error, line {error.lineno}: {error.msg}\n    {(error.text or '').strip()}"
    except Exception as error:
        return None, f"importing {path} raised {type(error).__name__}\n" + brief_traceback(error, path)
    return module, None


def run_check(args):
    module, problem = load(args.file)
    if problem:
        report = Report(args.name)
        report.fail("loads", f"{args.file} loads", problem)
        print(report.text())
        return FAILED
    report = check(EXERCISES[args.name], module, path=args.file)
    print(report.text())
    if not report.passed:
        return FAILED
    if not args.train:
        return PASSED
    print()
    try:
        agree = training.compare(EXERCISES[args.name], module, steps=args.steps, batch_size=args.batch_size,
                                 images=args.images, every=args.every, seed=args.seed, plot_path=args.plot)
    except FileNotFoundError as error:       # fashion_mnist.DatasetNotFoundError: no data, no network
        print(f"--train needs Fashion-MNIST: {error}", file=sys.stderr)
        return USAGE
    return PASSED if agree else FAILED


def main(argv=None):
    args = parse_args(argv)
    if args.command == "start":
        return start(args.name, args.output)
    if args.command == "check":
        return run_check(args)
    return list_exercises()
