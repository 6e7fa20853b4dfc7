"""endolib: the EndoMamba research workbook's library (backbone, pretraining, heads, data, metrics)."""
__version__ = "0.1.0"
