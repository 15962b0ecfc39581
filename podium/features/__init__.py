"""Frozen ImageNet backbones and the on-disk cache of their convolutional features."""
