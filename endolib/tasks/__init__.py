"""Downstream tasks: heads on EndoMamba features and one shared fine-tuning / evaluation loop."""
