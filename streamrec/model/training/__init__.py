"""Training the encoder: user samplers, losses and the training loop."""
