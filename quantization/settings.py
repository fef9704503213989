"""Settings of the quantization study that its command lines offer, as plain numbers (no torch),
so a script's ``--help`` and the stage declaration read them without importing a quantizer."""

K_BITS = (2, 3, 4, 5, 6, 8)   # the k-bit scaling law's weight bit widths (quantization.scaling_law)
