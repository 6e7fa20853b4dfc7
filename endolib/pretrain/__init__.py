"""Hierarchical pretraining: masked video reconstruction plus alignment to a frozen general-domain teacher."""
