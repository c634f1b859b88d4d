"""The offline stand-ins: the synthetic demo data set and the trainer of the demo CLIP model."""
