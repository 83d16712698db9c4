"""HA-CM model: configuration, geometry, masking, transformer, pretrainer and heads."""
