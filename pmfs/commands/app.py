"""`pmfs app`: the web page of `pmfs infer` (Gradio), served on this machine.

    pmfs app --ckpt runs/demo/checkpoints/last.ckpt            # http://127.0.0.1:7860
    pmfs app --ckpt last.ckpt --host 0.0.0.0 --port 8080       # reachable from the network

The page is `pmfs.inference.app`; this module parses the options and starts it. The inference
flags of `pmfs infer` (device, detector, size, chunk, ...) set every job's defaults; the page
chooses the references, emotion, level and duration per job. Gradio and torch are imported only
when the app starts, so `--help` is quick.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pmfs.inference.options import InferenceOptions
from pmfs.options import add_options, option, options_from_args

PAGE_OPTIONS = ("num_references", "emotion", "level", "duration", "progress")
"""`InferenceOptions` fields the page sets per job (not flags of `pmfs app`)."""


@dataclass(frozen=True)
class AppArguments:
    """The server of `pmfs app`.

    Attributes:
        ckpt: a `pmfs fit` checkpoint of `pmfs.PMFS`.
        host: the address to bind (127.0.0.1: this machine only).
        port: the port.
        results: the folder the jobs' videos are written to.
    """

    ckpt: Path = option(help="a `pmfs fit` checkpoint of PMFS")
    host: str = option("127.0.0.1", help="address to bind (0.0.0.0: every interface)")
    port: int = option(7860, help="port", minimum=1)
    results: Path = option(Path("outputs/app"), help="folder for the generated videos")


def build_parser() -> argparse.ArgumentParser:
    """The `pmfs app` parser: `AppArguments` and `pmfs infer`'s settings but the page's."""
    parser = argparse.ArgumentParser(
        prog="pmfs app",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Serve a web page that makes talking-face videos: upload or record speech, "
        "upload a face video or photo, choose references / emotion / level / duration. Jobs "
        "run one at a time, with the same pipeline as `pmfs infer`.",
    )
    add_options(parser, AppArguments)
    add_options(parser.add_argument_group("every job's inference settings"), InferenceOptions,
                exclude=PAGE_OPTIONS)  # fmt: skip
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """`pmfs app …`: serve until interrupted; 1 (one line on stderr) for a bad checkpoint."""
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        server = options_from_args(AppArguments, args)
        options = options_from_args(InferenceOptions, args)
        from pmfs.inference.app import load_settings, serve

        settings = load_settings(server.ckpt, server.results, options)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    print(f"pmfs app: http://{server.host}:{server.port} (results in {server.results})")
    serve(settings, server.host, server.port)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
