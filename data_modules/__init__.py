"""LightningDataModules over the PMFS cache (MEAD, CREMA-D, synthetic)."""

from data_modules.talking_face import TalkingFaceDataModule

__all__ = ["TalkingFaceDataModule"]
