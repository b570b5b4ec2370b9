"""Callbacks that own media and figure logging (W&B); training code never knows the logger."""
