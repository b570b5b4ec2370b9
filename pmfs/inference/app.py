"""`pmfs app`: a Gradio web page around `pmfs infer` (speech + a face → a talking-face video).

The page uploads (or records) speech and uploads a face video or photo, takes the run's main
settings (references, emotion, level, duration), and runs the same inference library as
`pmfs infer` (`pmfs.inference.run.run_inference`, on a `LoadedModel` loaded once) — there is
no second pipeline. Its progress bar
is the pipeline's own (`gr.Progress(track_tqdm=True)` follows the tqdm bar of
`iter_output_frames`). The result plays in the page with its audio and can be downloaded; a bad
input (no face, an unreadable file, silence of 0 s) shows one line in the page and the app goes
on.

Jobs run one at a time (`queue(default_concurrency_limit=1)`), so two visitors cannot exhaust
the machine's memory; the app binds to 127.0.0.1 unless told otherwise. Results are written to
`results_dir` and never deleted by the app.

Gradio is imported only here (and only when the app starts): the rest of PMFS does not need it.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pmfs.batch import EMOTIONS, LEVELS
from pmfs.inference.options import InferenceOptions

if TYPE_CHECKING:
    import gradio as gr

    from pmfs.inference.run import InferenceResult, LoadedModel

log = logging.getLogger(__name__)

FACE_TYPES = [".mp4", ".mov", ".avi", ".mkv", ".webm", ".png", ".jpg", ".jpeg", ".bmp", ".webp"]
"""Face files the upload accepts (PyAV reads the videos, Pillow the photos)."""


@dataclass(frozen=True)
class AppSettings:
    """What `pmfs app` serves.

    Attributes:
        ckpt: a `pmfs fit` checkpoint of `pmfs.PMFS`.
        results_dir: where each job's mp4 is written (`<time>-<n>.mp4`); kept after the app
            stops.
        options: the inference settings every job starts from (device, detector, chunk, ...);
            the page sets references, emotion, level and duration per job.
        use_emotion: the checkpoint was trained with emotion labels (the page then offers them).
        default_references: K the checkpoint was trained with.
        loaded: the model, loaded once for every job (None: loaded at the first job).
    """

    ckpt: Path
    results_dir: Path
    options: InferenceOptions
    use_emotion: bool
    default_references: int
    loaded: LoadedModel | None = field(default=None, repr=False, compare=False)


def load_settings(
    ckpt: Path, results_dir: Path, options: InferenceOptions | None = None
) -> AppSettings:
    """Load the checkpoint once, before the page is served (a wrong file fails here, in one
    line, not at the first visitor's job), and read what the page offers from it."""
    from pmfs.inference.run import LoadedModel

    if not ckpt.is_file():
        raise FileNotFoundError(f"no checkpoint at {ckpt}")
    options = options or InferenceOptions()
    loaded = LoadedModel.load(ckpt, options.device)
    use_emotion = bool(getattr(loaded.model.audio_to_mouth.network, "use_emotion", False))
    results_dir.mkdir(parents=True, exist_ok=True)
    return AppSettings(
        ckpt=ckpt,
        results_dir=results_dir,
        options=options,
        use_emotion=use_emotion,
        default_references=int(loaded.data.get("num_references", 3)),
        loaded=loaded,
    )


def job_options(
    settings: AppSettings,
    references: float | None,
    emotion: str | None,
    level: float | None,
    duration: float | None,
) -> InferenceOptions:
    """The inference options of one job: the app's, with the page's choices (0 or empty: the
    default). Raises ValueError for a value out of range (shown in the page)."""
    k = int(references) if references else None
    if k is not None and k < 1:
        raise ValueError(f"references must be ≥ 1, got {k}")
    emotion_name = emotion if settings.use_emotion and emotion else None
    if emotion_name is not None and emotion_name not in EMOTIONS:
        raise ValueError(f"unknown emotion {emotion_name!r}; one of {', '.join(EMOTIONS)}")
    level_value = int(level) if settings.use_emotion and level else None
    if level_value is not None and level_value not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level_value}")
    seconds = float(duration) if duration else None
    return replace(
        settings.options,
        num_references=k,
        emotion=emotion_name,  # type: ignore[arg-type]  # checked against EMOTIONS above
        level=level_value,  # type: ignore[arg-type]  # checked against LEVELS above
        duration=seconds,
        progress=True,  # the tqdm bar the page's progress follows
    )


class Jobs:
    """Runs the page's jobs with the model loaded once: each job is `pmfs infer`'s run
    (`run_inference`'s steps on the `LoadedModel`), its output in `settings.results_dir`."""

    def __init__(self, settings: AppSettings) -> None:
        self.settings = settings
        self.loaded = settings.loaded
        self.count = 0

    def infer(self, audio: str, face: str, options: InferenceOptions) -> InferenceResult:
        """One video: `run_inference` on the model loaded once."""
        from pmfs.inference.run import LoadedModel, run_inference

        if self.loaded is None:
            self.loaded = LoadedModel.load(self.settings.ckpt, options.device)
        return run_inference(self.loaded, audio, face, self.out_path(), options)

    def out_path(self) -> Path:
        """A new, unique output path."""
        self.count += 1
        stamp = time.strftime("%Y%m%d-%H%M%S")
        return self.settings.results_dir / f"{stamp}-{self.count:03d}.mp4"

    def run(
        self,
        audio: str | None,
        face: str | None,
        references: float | None,
        emotion: str | None,
        level: float | None,
        duration: float | None,
    ) -> tuple[str | None, str | None, str]:
        """One job from the page's values.

        Returns:
            (the video to play, the file to download, the status line). On bad input the
            first two are None and the line says what was wrong, in one line.
        """
        from pmfs.inference.batch import JOB_ERRORS, one_line  # a job's errors, not the server's

        if not audio:
            return None, None, "error: upload or record the speech first"
        if not face:
            return None, None, "error: upload a face video or photo first"
        try:
            options = job_options(self.settings, references, emotion, level, duration)
            result = self.infer(audio, face, options)
        except JOB_ERRORS as exc:
            log.warning("job failed: %s", exc)
            return None, None, f"error: {one_line(exc)}"
        line = (
            f"done: {result.frames} frames ({result.frames / 25:.2f} s) at "
            f"{result.size[1]}×{result.size[0]} in {result.seconds:.1f} s"
        )
        if result.missing:
            line += f"; {result.missing} frames without a face ({result.passed_through} kept)"
        out = str(result.out)
        return out, out, line


def build_app(settings: AppSettings) -> gr.Blocks:
    """The page: inputs, settings, a Generate button, the video, a download, a status line."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home (offline labs)
    import gradio as gr

    jobs = Jobs(settings)

    def generate(
        audio: str | None,
        face: Any,
        references: float | None,
        emotion: str | None,
        level: float | None,
        duration: float | None,
        progress: gr.Progress = gr.Progress(track_tqdm=True),  # noqa: B008  # Gradio's idiom
    ) -> tuple[str | None, str | None, str]:
        progress(0, desc="reading the inputs")
        path = face if isinstance(face, str) or face is None else getattr(face, "name", None)
        return jobs.run(audio, path, references, emotion, level, duration)

    with gr.Blocks(title="PMFS — talking face") as app:
        gr.Markdown(
            "## PMFS — talking face\nSpeech + a face video or photo → the face speaking it. "
            f"Checkpoint: `{settings.ckpt.name}`."
        )
        with gr.Row():
            with gr.Column():
                audio = gr.Audio(
                    sources=["upload", "microphone"],
                    type="filepath",
                    format=None,
                    label="Speech",
                    elem_id="speech",
                )
                face = gr.File(label="Face video or photo", file_types=FACE_TYPES, elem_id="face")
                references = gr.Slider(
                    1, 8, value=settings.default_references, step=1, label="References"
                )
                emotion = gr.Dropdown(
                    list(EMOTIONS),
                    value="neutral",
                    label="Emotion",
                    visible=settings.use_emotion,
                )
                level = gr.Radio(
                    list(LEVELS), value=LEVELS[0], label="Level", visible=settings.use_emotion
                )
                duration = gr.Number(value=0, label="Seconds of speech to use (0: all)", minimum=0)
                button = gr.Button("Generate", variant="primary", elem_id="generate")
            with gr.Column():
                video = gr.Video(label="Result", elem_id="result", autoplay=False)
                download = gr.File(label="Download", elem_id="download")
                status = gr.Textbox(label="Status", lines=1, max_lines=1, elem_id="status")
        button.click(
            generate,
            inputs=[audio, face, references, emotion, level, duration],
            outputs=[video, download, status],
        )
    app.queue(default_concurrency_limit=1)  # one job at a time: memory stays bounded
    return app


def serve(settings: AppSettings, host: str = "127.0.0.1", port: int = 7860) -> None:
    """Serve the page until interrupted (blocks)."""
    app = build_app(settings)
    app.launch(
        server_name=host,
        server_port=port,
        share=False,
        inbrowser=False,
        show_error=True,
        allowed_paths=[str(settings.results_dir.resolve())],
    )
