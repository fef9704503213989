"""Pruning study (VGG-11): unstructured magnitude and channel pruning. Library modules and numbered scripts."""
