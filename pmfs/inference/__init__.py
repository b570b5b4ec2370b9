"""Inference of `pmfs infer`: a target face (video or image) + speech → a talking-face video.

One module per step (the command in `pmfs.commands.infer` only parses and reports):

- `options`: `InferenceOptions`, the settings of a run, which are also the command's flags
  (torch-free, so `pmfs infer --help` stays quick).
- `template`: the target's frames at 25 fps in their original resolution (an image is one
  frame), and `playback_indices`, which plays them forward and backward to the audio's length.
- `tracking`: each frame's 68 landmarks (face-alignment or a .npy), the largest face, gaps
  interpolated or passed through, the track smoothed (`pmfs.faces`, as preprocessing does).
- `crop`: preprocessing's stable square crop at the model's image size, the clip with K
  references spread over mouth opening, and the paste-back of each generated face into its
  original frame through a feathered mask of the region the renderer generates.
- `run`: the whole chain chunk by chunk, the video muxed with the audio; `run_inference`.

This package module imports nothing, so importing `pmfs.inference.options` stays light.
"""
