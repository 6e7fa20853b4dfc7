"""EndoMamba backbone (spatial bidirectional + temporal causal Mamba), registry and checkpoint loading."""
from endolib.models.checkpoint import LoadReport, load_model, load_pretrained, save_checkpoint
from endolib.models.endomamba import EndoMamba, EndoMambaConfig, StreamState
from endolib.models.registry import create_model, list_models, model_from_config

__all__ = ["EndoMamba", "EndoMambaConfig", "LoadReport", "StreamState", "create_model", "list_models",
           "load_model", "load_pretrained", "model_from_config", "save_checkpoint"]
