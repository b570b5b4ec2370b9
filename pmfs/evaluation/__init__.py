"""Evaluation of checkpoints (`pmfs evaluate`, DESIGN §5): metrics overall, per emotion and level.

- `options`: `EvaluateOptions`, the command line's options (and parser);
- `scores`: per-clip metrics along each path of a model (`from_audio`, `from_landmarks`), the
  optional metrics that need user-supplied weights (LPIPS, FID, SyncNet);
- `aggregation`: per emotion, per (emotion, level) and overall means;
- `reports`: metrics.json, metrics.md and W&B tables;
- `run`: `evaluate`, the whole run over a split.

The command itself is `pmfs.commands.evaluate`. Importing this package imports no torch.
"""
