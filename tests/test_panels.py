"""`pmfs.panels`: the media panels and grids shared by the video callbacks and the figures."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pmfs.panels import (
    GridLayout,
    colormap_table,
    compose_grid,
    error_heatmap,
    image_grid,
    image_panels,
    sketch_panels,
)


def _panel(figure: np.ndarray, layout: GridLayout, row: int, col: int) -> np.ndarray:
    """(P, P, 3) pixels of panel (row, col) of a figure array (H, W, 3)."""
    x, y = layout.origin(row, col)
    return figure[y : y + layout.panel, x : x + layout.panel]


def test_colormap_and_grid_helpers() -> None:
    table = colormap_table().astype(np.float64)
    assert table.shape == (256, 3)
    luminance = table @ np.array([0.299, 0.587, 0.114])
    assert luminance[0] < 10 and luminance[-1] > 200 and (np.diff(luminance) >= -1).all()
    frames = np.arange(5, dtype=np.uint8)[:, None, None, None] * np.ones((5, 2, 8, 3), np.uint8)
    assert image_grid(frames, 3)[::2, 0, 0].tolist() == [0, 2, 4]  # first, middle, last
    assert image_grid(frames, 9).shape == (10, 8, 3)  # at most one row per frame
    with pytest.raises(ValueError, match="generated and truth"):
        error_heatmap(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 5))


def test_sketch_panel_draws_black_ink_on_white() -> None:
    sketch = torch.zeros(2, 8, 8)
    sketch[0, 2, :] = 1.0
    sketch[1, :, 5] = 0.5
    panel = sketch_panels(sketch)
    assert panel.shape == (8, 8, 3) and panel.dtype == np.uint8
    assert panel[0, 0].tolist() == [255, 255, 255]
    assert panel[2, 0].tolist() == [0, 0, 0]
    assert panel[6, 5].tolist() == [128, 128, 128]
    batch = sketch_panels(torch.stack([sketch, 1.0 - sketch]))  # leading dimensions kept
    assert batch.shape == (2, 8, 8, 3) and (batch[0] == panel).all()


def test_image_panels_round_to_uint8_rgb() -> None:
    images = torch.rand(2, 3, 4, 5)
    panels = image_panels(images)
    assert panels.shape == (2, 4, 5, 3) and panels.dtype == np.uint8
    expected = (images * 255.0).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    np.testing.assert_array_equal(panels, expected)
    np.testing.assert_array_equal(image_panels(images[0]), expected[0])
    assert image_panels(torch.full((3, 1, 1), 2.0)).tolist() == [[[255, 255, 255]]]  # clamped


def test_compose_grid_layout_and_panels() -> None:
    layout = GridLayout.for_panel(32)
    rng = np.random.default_rng(0)
    panels = [[rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(3)] for _ in "ab"]
    panels[1][2] = np.zeros((16, 16, 3), np.uint8)  # another size: resized to the panel
    figure = compose_grid(panels, ["one", "two words"], ["A", "B\nline 2", "C"], layout)
    assert figure.size == layout.size(2, 3)
    array = np.asarray(figure)
    for row in range(2):
        for col in range(2):
            assert (_panel(array, layout, row, col) == panels[row][col]).all()
    assert (_panel(array, layout, 1, 2) == 0).all()
    label = array[layout.header_height :, : layout.label_width]
    header = array[: layout.header_height, layout.label_width :]
    assert (label < 128).any() and (header < 128).any()  # text was drawn
    with pytest.raises(ValueError, match="one label per row"):
        compose_grid(panels, ["only one"], ["A", "B", "C"], layout)
