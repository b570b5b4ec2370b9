"""The built-in synthetic talking-face dataset (`pmfs data synth`, DESIGN §3 "Synthetic data").

One articulatory track per clip (jaw opening, lip rounding, lip closure, voicing, pitch, ...)
drives both a formant speech synthesizer and the mouth of a rendered face, so the audio → mouth
mapping is causal and learnable. Modules, in pipeline order:

- `utterance`, `articulation`: phone sequences with timing → coarticulated articulator tracks;
- `speech`: the formant synthesizer (16 kHz);
- `speaker`, `emotion`: who speaks and how (geometry, colours, voice; MEAD's emotions × levels);
- `face`, `motion`, `scene`: the 68-landmark face rig, head motion/blinks/gaze, projection;
- `raster`, `render`, `background`: the anti-aliased rasteriser, the person, the backdrop;
- `make`: one clip (speech, face, render, crop, metadata);
- `generate`, `raw`: the dataset driver (cache writer, workers) and the raw MEAD layout.

The options are `config.SynthConfig` (light: `pmfs data synth`'s parser reads them); the entry
point is `generate.build_synthetic_dataset`. Nothing is imported here, so reading the options
loads no numerical library.
"""
