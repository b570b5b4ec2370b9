"""LightningDataModules over the PMFS cache (MEAD, CREMA-D, synthetic)."""
