"""The ``energyview`` command: train, ood, metrics, recipes (and sample, where registered).

Each subcommand parses its arguments here and calls one library function with plain values;
nothing below this module reads an argparse namespace.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Sequence

__all__ = ["main"]


def _cmd_train(args: argparse.Namespace) -> int:
    from .pipeline import run_recipe
    from .recipes import load_recipe

    from .training import TrainingInterrupted

    recipe = load_recipe(args.recipe, overrides=args.set)
    if args.device:
        recipe.train.device = args.device
    try:
        run_recipe(recipe, args.out, resume=args.resume)
    except TrainingInterrupted as stop:
        print(f"energyview train: interrupted after step {stop.step}; checkpoint saved to {stop.checkpoint}. "
              f"Continue with: energyview train {args.recipe} --out {args.out} --resume", file=sys.stderr)
        return 130
    print(f"run folder: {Path(args.out).resolve()}")
    return 0


def _cmd_ood(args: argparse.Namespace) -> int:
    from .pipeline import evaluate_checkpoint

    overrides = {"evaluation": {"temperature": args.temperature}} if args.temperature is not None else None
    evaluate_checkpoint(args.checkpoint, args.out, device=args.device or "auto", overrides=overrides)
    return 0


def _cmd_metrics(args: argparse.Namespace) -> int:
    from .ood.metrics import ood_metrics, read_scores

    metrics = ood_metrics(read_scores(args.in_scores), read_scores(args.out_scores), higher_is_ood=args.higher_is_ood, tpr=args.tpr)
    print(json.dumps(metrics, indent=2))
    return 0


def _cmd_sample(args: argparse.Namespace) -> int:
    from .tasks.jem import sample_from_checkpoint

    if Path(args.out).suffix.lower() != ".png":
        raise ValueError(f"--out must name a .png file, got {args.out!r}")

    path = sample_from_checkpoint(
        args.checkpoint, args.out, n_per_class=args.per_class, n_steps=args.steps, step_size=args.step_size,
        noise_std=args.noise_std, conditional=not args.marginal, seed=args.seed, device=args.device or "auto",
    )
    print(f"sample grid: {Path(path).resolve()}")
    return 0


def _cmd_recipes(args: argparse.Namespace) -> int:
    import yaml

    from .recipes import find_recipe, list_recipes

    for name in list_recipes():
        data = yaml.safe_load(find_recipe(name).read_text()) or {}
        print(f"{name:24s} {str(data.get('description', '')).strip().splitlines()[0] if data.get('description') else ''}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="energyview", description="Energies, OOD scores and training for classifiers and contrastive models.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train and evaluate a recipe into a run folder")
    train.add_argument("recipe", help="recipe name (see `energyview recipes`) or path to a YAML file")
    train.add_argument("--out", required=True, help="run folder for the checkpoint, logs, metrics and plots")
    train.add_argument("--resume", action="store_true", help="continue from the run folder's last checkpoint")
    train.add_argument("--device", help="override train.device: auto, cpu, cuda or cuda:N")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a recipe value, for example --set train.epochs=3 (repeatable)")
    train.set_defaults(func=_cmd_train)

    ood = sub.add_parser("ood", help="evaluate a trained run again: accuracy, ECE, OOD table and plots")
    ood.add_argument("checkpoint", help="run folder or checkpoint file written by `energyview train`")
    ood.add_argument("--out", help="folder for the report (default: RUN_DIR/ood-T<temperature>, so the training report is kept)")
    ood.add_argument("--temperature", type=float, help="temperature T of the scores (default: the recipe's)")
    ood.add_argument("--device", help="auto, cpu, cuda or cuda:N")
    ood.set_defaults(func=_cmd_ood)

    metrics = sub.add_parser("metrics", help="OOD metrics of scores computed elsewhere (one score per line)")
    metrics.add_argument("--in-scores", required=True, help="file of in-distribution scores, one per line")
    metrics.add_argument("--out-scores", required=True, help="file of OOD scores, one per line")
    direction = metrics.add_mutually_exclusive_group(required=True)
    direction.add_argument("--higher-is-ood", dest="higher_is_ood", action="store_true", help="higher score means more OOD (energy, entropy)")
    direction.add_argument("--lower-is-ood", dest="higher_is_ood", action="store_false", help="lower score means more OOD (MSP, max-logit)")
    metrics.add_argument("--tpr", type=float, default=0.95, help="target true positive rate of FPR@TPR (default 0.95)")
    metrics.set_defaults(func=_cmd_metrics)

    sample = sub.add_parser("sample", help="draw a Langevin sample grid from a trained run (PNG)")
    sample.add_argument("checkpoint", help="run folder or checkpoint file written by `energyview train`")
    sample.add_argument("--out", required=True, help="path of the PNG grid to write")
    sample.add_argument("--per-class", type=int, default=10, help="samples per grid row; the grid has one row per class (default 10)")
    sample.add_argument("--steps", type=int, default=100, help="Langevin steps per chain (default 100)")
    sample.add_argument("--step-size", type=float, help="Langevin step size η (default: the run's sampler setting)")
    sample.add_argument("--noise-std", type=float, help="noise σ per step of the decoupled update (default: the run's setting)")
    sample.add_argument("--marginal", action="store_true",
                        help="sample p(x) from the run's replay buffer instead of p(x | y) from fresh chains")
    sample.add_argument("--seed", type=int, default=0, help="random seed of the initial chains and the noise (default 0)")
    sample.add_argument("--device", help="auto, cpu, cuda or cuda:N")
    sample.set_defaults(func=_cmd_sample)

    recipes = sub.add_parser("recipes", help="list the shipped recipes")
    recipes.set_defaults(func=_cmd_recipes)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print(f"energyview {args.command}: interrupted", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        if args.verbose:
            raise
        print(f"energyview {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
