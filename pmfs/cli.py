"""The `pmfs` command: LightningCLI sub-commands plus the framework's own tools.

`pmfs fit|validate|test|predict` are LightningCLI (see `pmfs.commands.lightning`); every other
sub-command lives in its own module and is imported only when it runs, so `pmfs --help` stays
fast (no torch, lightning or librosa import).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pmfs import __version__

LIGHTNING_SUBCOMMANDS = ("fit", "validate", "test", "predict")


@dataclass(frozen=True)
class Command:
    """A sub-command: `target` is "module:function", the function takes argv and returns a code."""

    target: str
    help: str

    def load(self) -> Callable[[list[str]], int]:
        """Import the module that implements the command (lazily) and return its entry function."""
        module_name, func_name = self.target.split(":")
        func: Callable[[list[str]], int] = getattr(importlib.import_module(module_name), func_name)
        return func


_LIGHTNING_HELP = {
    "fit": "train a model (LightningCLI): pmfs fit -c experiments/<x>.yaml [-c overlay.yaml]",
    "validate": "run the validation loop of a model on a checkpoint (LightningCLI)",
    "test": "run the test loop (LightningCLI)",
    "predict": "run the predict loop (LightningCLI)",
}

# Tools, in the order `pmfs --help` shows them. Each entry exists only once its module is built.
COMMANDS: dict[str, Command] = {
    "data": Command("pmfs.commands.data:main", "datasets: synth, preprocess (MEAD/CREMA-D), sheet"),
    "infer": Command(
        "pmfs.commands.infer:main",
        "audio + a face video or image -> talking-face mp4: pmfs infer --ckpt",
    ),
    "app": Command(
        "pmfs.commands.app:main", "a web page for infer (Gradio): pmfs app --ckpt CKPT [--port]"
    ),
    "evaluate": Command(
        "pmfs.commands.evaluate:main", "metrics of a checkpoint on a split, per emotion and level"
    ),
    "figure": Command("pmfs.commands.figure:main", "the paper's figures: ablation rows, emotions"),
    "sweep": Command(
        "pmfs.commands.sweep:main", "run a W&B sweep file's grid here: pmfs sweep FILE"
    ),
    "bench": Command("pmfs.commands.bench:main", "speed table of DESIGN §6: loader, train, infer"),
    "demo": Command(
        "pmfs.commands.demo:main", "the README's main job on the built-in synthetic data"
    ),
}


def format_help() -> str:
    """The top-level help text (no heavy imports)."""
    width = max(len(name) for name in (*LIGHTNING_SUBCOMMANDS, *COMMANDS))
    lines = [
        f"usage: pmfs <command> [options]   (pmfs {__version__}; also `python -m pmfs`)",
        "",
        "PMFS — Progressive Mouth-to-Face Synthesis: audio-driven talking-face research framework.",
        "",
        "training (LightningCLI; -c/--config stacks, --print_config, ${...} interpolation):",
    ]
    lines += [f"  {name:<{width}}  {_LIGHTNING_HELP[name]}" for name in LIGHTNING_SUBCOMMANDS]
    lines += ["", "tools:"]
    lines += [f"  {name:<{width}}  {cmd.help}" for name, cmd in COMMANDS.items()]
    lines += ["", "`pmfs <command> --help` shows the options of a command."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch `pmfs <command> ...`; returns the process exit code."""
    from_sys_argv = argv is None
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(format_help())
        return 0
    if args[0] == "--version":
        print(f"pmfs {__version__}")
        return 0
    command, rest = args[0], args[1:]
    if command in LIGHTNING_SUBCOMMANDS:
        from pmfs.commands.lightning import run_lightning_cli

        run_lightning_cli(None if from_sys_argv else args)
        return 0
    if command in COMMANDS:
        return COMMANDS[command].load()(rest)
    print(f"pmfs: unknown command {command!r}\n\n{format_help()}", file=sys.stderr)
    return 2
