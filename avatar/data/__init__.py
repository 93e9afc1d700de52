"""Datasets, LightningDataModules and the corpora the project generates itself."""
