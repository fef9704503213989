"""Distillation study: VGG-16/19 teachers into VGG-11 students (KD, LS, DKD, FitNets, CRD)."""
