"""The network families models share: GAN blocks and the adversarial model, U-Net + DDIM, the decoder LM and
byte sampling, weight averages, input checks and the replica helpers a train step uses."""
