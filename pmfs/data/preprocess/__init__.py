"""Raw MEAD / CREMA-D downloads → the PMFS cache (`pmfs data preprocess`, `pmfs.commands.data`).

`layouts` finds the clips of a download, `pipeline` runs one clip after another (detect, fill,
smooth, crop, mask, mel, write) in worker processes, `mask` draws the foreground masks and
`settings` holds the options that change a clip's content. Face detection and crop geometry are
`pmfs.faces`'s, shared with inference.
"""
